"""Building the Docker images with the Docker SDK for Python: the shared base (``images/base``) and
one image per model (``images/<model>``).

Each image is tagged by a content hash of its build context and build arguments
(``mateval/base:<hash>``, ``mateval/<model>:<hash>``), so an unchanged model is not rebuilt; a
model's hash includes its base image's id, so a changed base rebuilds the models on it. Build
output streams to the terminal and to a log file; a failed build raises :class:`ImageBuildError`
naming the failing step with the log tail. The SDK has no BuildKit, so Dockerfiles use no
``RUN --mount``.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from orchestrator.registry import REPO_ROOT

DEFAULT_BASE_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
LOCAL_BASE_IMAGE = "mateval/local-base:latest"
BASE_REPOSITORY = "mateval/base"
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}
_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")


class ImageBuildError(RuntimeError):
    """A ``docker build`` failed. Attributes: ``step`` (e.g. ``"3/7 : RUN pip install ..."``) and
    ``log_tail`` (the last lines of the build output)."""

    def __init__(self, image: str, step: str | None, reason: str, log_tail: str):
        super().__init__(f"building {image} failed at step {step or '?'}: {reason}\n--- build log tail ---\n{log_tail}")
        self.step, self.reason, self.log_tail = step, reason, log_tail


@dataclass(frozen=True)
class BuildContext:
    """A build context as an in-memory tar archive with its content hash."""

    archive: bytes
    sha256: str

    @classmethod
    def from_files(cls, files: Iterable[tuple[Path, str]], extra: Mapping[str, str] | None = None) -> "BuildContext":
        """Pack ``(source path, path in the context)`` pairs; ``extra`` (build args, parent image id)
        enters the hash but not the archive. Timestamps and owners are zeroed so the archive (and
        hash) depend on content only."""
        digest = hashlib.sha256()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for source, name in sorted(files, key=lambda item: item[1]):
                data = Path(source).read_bytes()
                digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                archive.addfile(info, io.BytesIO(data))
        for key, value in sorted((extra or {}).items()):
            digest.update(f"{key}={value}\0".encode())
        return cls(buffer.getvalue(), digest.hexdigest())


def folder_files(folder: Path, prefix: str = "") -> list[tuple[Path, str]]:
    """Every file under ``folder`` (no caches), as context pairs placed under ``prefix``."""
    folder = Path(folder)
    return [(path, prefix + path.relative_to(folder).as_posix()) for path in sorted(folder.rglob("*"))
            if path.is_file() and not _IGNORED_PARTS & set(path.parts) and path.suffix != ".pyc"]


def build(client, context: BuildContext, repository: str, buildargs: Mapping[str, str], log_path: Path | None,
          echo: Callable[[str], None] | None = None, dockerfile: str = "Dockerfile", labels: Mapping[str, str] | None = None):
    """Build (or reuse) ``<repository>:<content hash[:12]>``; returns the ``docker.models.images.Image``.

    Raises:
        ImageBuildError: the build failed (failing step and log tail in the message).
    """
    import docker.errors

    tag = f"{repository}:{context.sha256[:12]}"
    try:
        image = client.images.get(tag)
        if echo:
            echo(f"image {tag} is up to date ({image.id[:19]})")
        return image
    except docker.errors.ImageNotFound:
        pass
    if echo:
        echo(f"building {tag}")
    lines: list[str] = []
    step = None
    log = open(log_path, "a") if log_path else None
    try:
        stream = client.api.build(fileobj=io.BytesIO(context.archive), custom_context=True, dockerfile=dockerfile,
                                  tag=tag, buildargs=dict(buildargs), rm=True, forcerm=True, decode=True,
                                  labels={"org.mateval.context-sha256": context.sha256, **(labels or {})})
        for chunk in stream:
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if not line.strip():
                        continue
                    match = _STEP.match(line)
                    if match:
                        step = f"{match.group(1)} : {match.group(2)}"
                    lines.append(line)
                    if log:
                        log.write(line + "\n")
                    if echo:
                        echo(line)
            if "error" in chunk or "errorDetail" in chunk:
                reason = chunk.get("error") or chunk["errorDetail"].get("message", "unknown error")
                if log:
                    log.write(f"ERROR: {reason}\n")
                raise ImageBuildError(tag, step, reason.strip(), "\n".join(lines[-40:]))
    except docker.errors.APIError as exc:
        raise ImageBuildError(tag, step, str(exc), "\n".join(lines[-40:])) from exc
    finally:
        if log:
            log.close()
    return client.images.get(tag)


def base_context(base_image: str, base_image_id: str | None) -> BuildContext:
    """Context of ``images/base``: ``runner/``, ``metrics/`` and ``images/base/``."""
    files = folder_files(REPO_ROOT / "runner", "runner/") + folder_files(REPO_ROOT / "metrics", "metrics/")
    files += folder_files(REPO_ROOT / "images" / "base", "images/base/")
    return BuildContext.from_files(files, {"BASE_IMAGE": base_image, "BASE_IMAGE_ID": base_image_id or ""})


def ensure_base_image(client, base_image: str, log_path: Path | None, echo=None, pull: bool = True):
    """The parent image (pulled when missing and ``pull``), then mateval's base on it.

    Raises:
        ImageBuildError: the parent image is missing and cannot be pulled, or the build failed.
    """
    import docker.errors

    try:
        parent = client.images.get(base_image)
    except docker.errors.ImageNotFound:
        if not pull:
            raise ImageBuildError(BASE_REPOSITORY, None, f"base image {base_image} is not present", "")
        if echo:
            echo(f"pulling {base_image}")
        try:
            parent = client.images.pull(base_image)
        except docker.errors.APIError as exc:
            raise ImageBuildError(
                BASE_REPOSITORY, "FROM", f"cannot pull BASE_IMAGE {base_image}: {exc}. Without a registry, build a "
                f"local base with `make local-base-image` and pass BASE_IMAGE={LOCAL_BASE_IMAGE}", "") from exc
    context = base_context(base_image, parent.id)
    return build(client, context, BASE_REPOSITORY, {"BASE_IMAGE": base_image}, log_path, echo,
                 dockerfile="images/base/Dockerfile", labels={"org.mateval.base-image": base_image})


def ensure_model_image(client, model_folder: Path, model_name: str, base_image: str, log_path: Path | None, echo=None):
    """Build (or reuse) the base and then ``mateval/<model>:<hash>``; returns ``(image, base)``.

    Raises:
        ImageBuildError: a build failed, or ``images/<model>/Dockerfile`` is missing.
    """
    if not (Path(model_folder) / "Dockerfile").is_file():
        raise ImageBuildError(f"mateval/{model_name}", None, f"{Path(model_folder) / 'Dockerfile'} does not exist", "")
    base = ensure_base_image(client, base_image, log_path, echo)
    base_tag = sorted(t for t in base.tags if t.startswith(BASE_REPOSITORY + ":"))[0]
    context = BuildContext.from_files(folder_files(Path(model_folder)), {"MATEVAL_BASE": base.id})
    image = build(client, context, f"mateval/{model_name}", {"MATEVAL_BASE": base_tag}, log_path, echo,
                  labels={"org.mateval.base-image": base_image, "org.mateval.model": model_name})
    return image, base
