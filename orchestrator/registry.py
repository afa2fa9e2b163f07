"""The model registry: every ``images/<model>/model.yaml`` (``images/base`` and ``images/local-base``
are base images, not models)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner.manifest import ManifestError, ModelManifest, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOT_MODELS = {"base", "local-base"}


def images_dir() -> Path:
    """The folder holding the model folders (``MATEVAL_IMAGES`` overrides ``<repo>/images``)."""
    return Path(os.environ.get("MATEVAL_IMAGES", REPO_ROOT / "images"))


def model_names() -> list[str]:
    """Names of the folders under :func:`images_dir` that hold a ``model.yaml``, sorted."""
    root = images_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in NOT_MODELS
                  and (p / "model.yaml").is_file()) if root.is_dir() else []


class UnknownModelError(ManifestError):
    """No folder ``images/<name>`` with a ``model.yaml``; the message lists the known models."""


def get_model(name: str) -> ModelManifest:
    """Load and validate one model's manifest.

    Raises:
        UnknownModelError: no such model folder (known models listed).
        ManifestError: the manifest is invalid (file and field named).
    """
    folder = images_dir() / name
    if not (folder / "model.yaml").is_file():
        raise UnknownModelError(f"unknown model {name!r}: no {folder / 'model.yaml'}; "
                                f"known models: {', '.join(model_names()) or 'none'}")
    return load_manifest(folder)


def resolve_models(selection: str) -> list[ModelManifest]:
    """``"all"``, one name, or a comma-separated list -> manifests (errors as :func:`get_model`)."""
    names = model_names() if selection == "all" else [n.strip() for n in selection.split(",") if n.strip()]
    if not names:
        raise UnknownModelError(f"no models selected by {selection!r}")
    return [get_model(name) for name in names]


def data_roots(data_dir: str | None = None) -> list[Path]:
    """Directories searched for datasets: ``--data-dir`` or ``MATEVAL_DATA`` first, then the data
    embedded in the repository (``<repo>/data``)."""
    roots = []
    for candidate in (data_dir, os.environ.get("MATEVAL_DATA")):
        if candidate:
            roots.append(Path(candidate).resolve())
    roots.append(REPO_ROOT / "data")
    return roots


def git_sha() -> str | None:
    """mateval's git commit (with ``-dirty`` when the work tree has changes), or ``None``."""
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
