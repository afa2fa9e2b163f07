"""Hash-pinned lock files of the Docker images (``images/<image>/requirements.lock``).

``make image-locks`` compiles each ``requirements.in`` with pip-tools (``pip-compile
--generate-hashes``) and then removes torch and the packages only torch brings (CUDA wheels,
triton, sympy, networkx, ...): the base image (``BASE_IMAGE``, a CUDA PyTorch image) provides them
at the versions its torch was built against, and reinstalling them would break that torch. The
images install the locks with ``pip install --no-deps --require-hashes`` and then run ``pip check``,
so a missing or conflicting dependency fails the build instead of surfacing at run time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

#: provided by the base image together with torch (torch's own dependency closure)
TORCH_CLOSURE = {"torch", "triton", "filelock", "fsspec", "jinja2", "markupsafe", "mpmath", "networkx", "sympy",
                 "setuptools", "typing-extensions"}
_TORCH_CLOSURE_PATTERN = re.compile(r"^(nvidia-(?!ml-py$).*|cuda-.*)$")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def canonical(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def provided_by_base(name: str) -> bool:
    """True when the base image provides ``name`` (torch and its dependency closure)."""
    name = canonical(name)
    return name in TORCH_CLOSURE or bool(_TORCH_CLOSURE_PATTERN.match(name))


def strip_base_packages(lines: Iterable[str]) -> list[str]:
    """Remove the requirement blocks (a ``name==version`` line and its indented continuation lines
    of hashes and ``# via`` comments) of packages the base image provides."""
    out, skipping = [], False
    for line in lines:
        match = _REQUIREMENT.match(line)
        if match:
            skipping = provided_by_base(match.group(1))
        elif line and not line[0].isspace():
            skipping = False
        if not skipping:
            out.append(line)
    return out


def compile_lock(folder: Path, pip_compile: str) -> Path:
    """Compile ``folder/requirements.in`` to ``folder/requirements.lock`` and strip it.

    Raises:
        subprocess.CalledProcessError: pip-compile failed.
    """
    lock = folder / "requirements.lock"
    if "/" in pip_compile:  # a path (the Makefile's build/pip-tools/bin/pip-compile): pip-compile runs in folder
        pip_compile = str(Path(pip_compile).resolve())
    subprocess.run([pip_compile, "--quiet", "--generate-hashes", "--strip-extras", "--no-emit-index-url",
                    "--no-emit-find-links", "--unsafe-package", "torch", "--output-file", lock.name,
                    "requirements.in"], check=True, cwd=folder)  # names relative to cwd: folder may be relative
    header = ["# Installed with: pip install --no-deps --require-hashes -r requirements.lock && pip check",
              "# torch and its dependency closure come from the base image (orchestrator/locks.py)."]
    lock.write_text("\n".join(header + strip_base_packages(lock.read_text().splitlines())) + "\n")
    return lock


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.locks [--strip-only] FOLDER...``"""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--strip-only", action="store_true", help="only strip existing locks")
    parser.add_argument("--pip-compile", default=shutil.which("pip-compile") or "pip-compile")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if args.strip_only:
            lock = folder / "requirements.lock"
            lock.write_text("\n".join(strip_base_packages(lock.read_text().splitlines())) + "\n")
        else:
            lock = compile_lock(folder, args.pip_compile)
        print(f"{lock}: {sum(1 for l in lock.read_text().splitlines() if _REQUIREMENT.match(l))} pinned packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
