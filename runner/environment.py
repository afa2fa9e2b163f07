"""The ``environment`` block of ``result.json``: code version, Python, packages and hardware."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
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


def describe(git_sha: str | None, torch_device: str | None, gpu_names: list[str], gpu_driver: str | None) -> dict[str, Any]:
    """Build the environment block. ``git_sha`` comes from the orchestrator (a container has no git)."""
    return {
        "mateval_git_sha": git_sha or os.environ.get("MATEVAL_GIT_SHA"),
        "python": platform.python_version(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_device": torch_device,
        "gpus": gpu_names,
        "gpu_driver": gpu_driver,
        "hostname": socket.gethostname(),
    }
