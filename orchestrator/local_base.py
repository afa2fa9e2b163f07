"""``make local-base-image``: a stand-in for the CUDA PyTorch base image, on machines that reach no
image registry. Debian (the machine's own apt mirror) is bootstrapped with ``debootstrap`` and
loaded with ``docker import`` (``mateval/debian-rootfs:<suite>``); ``images/local-base/Dockerfile``
adds a virtual environment with the torch CPU wheel (``pip download`` finds the local wheel) and
the machine's CA bundle so pip works inside later builds. Idempotent: each step is skipped when
its image exists (tags by content hash), and the result is tagged ``mateval/local-base:latest``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from orchestrator.images import LOCAL_BASE_IMAGE, BuildContext, build, folder_files
from orchestrator.registry import REPO_ROOT

SUITE = "bookworm"
ROOTFS_REPOSITORY = "mateval/debian-rootfs"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "passwd")
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")


class LocalBaseError(RuntimeError):
    """A step of the local base build failed; the message names the step and the command."""


def apt_mirror() -> str:
    """The Debian mirror of this machine's apt sources (deb822 ``.sources`` or ``sources.list``).

    Raises:
        LocalBaseError: no Debian mirror found.
    """
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text()
        for block in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", block, re.M)
            if uris and suites and SUITE in suites.group(1).split() and "security" not in uris.group(1):
                return uris.group(1)
        for line in text.splitlines():
            match = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    raise LocalBaseError(f"no Debian {SUITE} mirror found in /etc/apt/sources.list(.d)")


def ca_bundle() -> Path:
    """The machine's CA bundle (``PIP_CERT``, ``SSL_CERT_FILE`` or Debian's default)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise LocalBaseError("no CA bundle found (PIP_CERT, SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt)")


def _run(command: list[str], step: str, echo: Callable[[str], None] | None, **kwargs) -> None:
    if echo:
        echo(f"$ {' '.join(command)}")
    process = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if process.returncode != 0:
        raise LocalBaseError(f"{step} failed (exit {process.returncode}): {' '.join(command)}\n"
                             f"{(process.stdout + process.stderr)[-4000:]}")


def ensure_rootfs(client, echo=None) -> str:
    """``mateval/debian-rootfs:<suite>-<hash of the package list and mirror>``, made when missing."""
    import docker.errors
    import hashlib

    mirror = apt_mirror()
    key = hashlib.sha256(f"{SUITE} {mirror} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    tag = f"{ROOTFS_REPOSITORY}:{SUITE}-{key}"
    try:
        client.images.get(tag)
        if echo:
            echo(f"image {tag} is up to date")
        return tag
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise LocalBaseError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="mateval-rootfs-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp) / "root"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
             "debootstrap", echo)
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(root), "-cf", str(tarball), "."], "tar", echo)
        if echo:
            echo(f"docker import {tarball} {tag}")
        repository, _, version = tag.partition(":")
        client.api.import_image(src=str(tarball), repository=repository, tag=version)
    return tag


def build_local_base(client, log_path: Path | None = None, echo=None):
    """Make ``mateval/local-base:latest`` (see module docstring); returns the image."""
    rootfs = ensure_rootfs(client, echo)
    with tempfile.TemporaryDirectory(prefix="mateval-local-base-") as tmp:
        wheels = Path(tmp) / "wheels"
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
              TORCH_SPEC], "pip download torch", echo)
        files = folder_files(REPO_ROOT / "images" / "local-base")
        files += [(ca_bundle(), "build-ca.crt")] + [(path, f"wheels/{path.name}") for path in sorted(wheels.iterdir())]
        context = BuildContext.from_files(files, {"ROOTFS_IMAGE": rootfs})
        image = build(client, context, "mateval/local-base", {"ROOTFS_IMAGE": rootfs}, log_path, echo)
    repository, _, tag = LOCAL_BASE_IMAGE.partition(":")
    image.tag(repository, tag)
    return client.images.get(LOCAL_BASE_IMAGE)
