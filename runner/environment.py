"""The ``environment`` block of ``result.json``: code version, Python, packages and hardware.

On the local and Slurm backends the model stage runs in the model's own environment
(``orchestrator/envs.py``), which passes its identity in ``MATEVAL_ENV_NAME``,
``MATEVAL_ENV_SHA256`` and ``MATEVAL_ENV_LOCKS``; they are recorded as ``model_env``. The model's
key packages (the names in its ``requirements.in``) are recorded with the common ones.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mateval", "torch", "torch_geometric", "numpy", "scipy", "scikit-learn", "pandas", "pymatgen",
            "nvitop", "psutil", "thop", "matminer", "smact", "e3nn", "docker")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, ``None`` when not installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:[=<>!~\[;]|$)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def model_packages(model_dir: str | Path | None) -> tuple[str, ...]:
    """Distribution names listed in ``<model_dir>/requirements.in`` (the model's key packages)."""
    if not model_dir:
        return ()
    try:
        lines = (Path(model_dir) / "requirements.in").read_text().splitlines()
    except OSError:
        return ()
    names = []
    for line in lines:
        match = _REQUIREMENT.match(line)
        if match and not line.lstrip().startswith(("#", "-")):
            names.append(match.group(1))
    return tuple(names)


def model_env() -> dict[str, Any] | None:
    """The model environment's identity from the variables the local/Slurm backend sets, or ``None``."""
    name = os.environ.get("MATEVAL_ENV_NAME")
    if not name:
        return None
    torch_version = package_versions(("torch",))["torch"]
    return {"name": name, "lock_sha256": os.environ.get("MATEVAL_ENV_SHA256", ""),
            "python": platform.python_version(), "torch": torch_version,
            "locks": [p for p in os.environ.get("MATEVAL_ENV_LOCKS", "").split(os.pathsep) if p]}


def describe(git_sha: str | None, torch_device: str | None, gpu_names: list[str], gpu_driver: str | None,
             model_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the environment block. ``git_sha`` comes from the orchestrator (a container has no git);
    ``model_dir`` adds the model's key packages (its ``requirements.in``) to ``packages``."""
    known = {_canonical(n) for n in PACKAGES}
    extra = tuple(n for n in model_packages(model_dir) if _canonical(n) not in known)
    return {
        "mateval_git_sha": git_sha or os.environ.get("MATEVAL_GIT_SHA"),
        "python": platform.python_version(),
        "packages": package_versions(PACKAGES + extra),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_device": torch_device,
        "gpus": gpu_names,
        "gpu_driver": gpu_driver,
        "hostname": socket.gethostname(),
        "model_env": model_env(),
    }
