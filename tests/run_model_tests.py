"""Run one model's own tests (``images/<name>/tests/``) in a given Python, usually the model's
environment (``python -m orchestrator.envs python NAME``).

    python tests/run_model_tests.py NAME [--python PY] [--extra-path DIR]... [-- PYTEST_ARGS...]
    python tests/run_model_tests.py --list     # the models that have a tests/ folder, one a line

The command run, from the repository root, is

    PYTHONPATH=<repo>[:DIR...] PY -m pytest images/NAME/tests --import-mode=importlib -p no:cacheprovider ...

- ``PYTHONPATH`` is exactly the repository root (``runner``, ``metrics`` and ``tests.conftest``
  import) plus each ``--extra-path`` (e.g. a folder holding pytest and hypothesis when the model's
  environment has none); the caller's ``PYTHONPATH`` is not inherited, so nothing of mateval's
  own ``.venv`` leaks into the model's environment.
- ``--import-mode=importlib``: every model folder has a ``tests/conftest.py`` and none is a
  package, so the default import mode would clash on the module name ``conftest`` (and a
  ``tests/__init__.py`` would clash with the repository's ``tests`` package).
- ``-p no:cacheprovider``: the main suite's ``.pytest_cache`` (``--lf``) is left alone.

The exit status is pytest's; 0 with a note when the model folder has no ``tests/``; 2 when there is
no such model folder. Standard library only: it runs in any Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = REPO_ROOT / "images"
PYTEST_OPTIONS = ("--import-mode=importlib", "-p", "no:cacheprovider")


def models_with_tests(images: Path | None = None) -> list[str]:
    """Names of the folders ``images/<name>/`` that hold a ``tests/`` folder, sorted."""
    return sorted(p.parent.name for p in (IMAGES if images is None else images).glob("*/tests") if p.is_dir())


def command(name: str, python: str, pytest_args: list[str] | tuple[str, ...] = (), images: Path | None = None) -> list[str]:
    """The pytest command line for model ``name``, run from the repository root (the tests folder
    relative to it when it lies inside)."""
    tests = (IMAGES if images is None else images) / name / "tests"
    shown = tests.relative_to(REPO_ROOT) if tests.is_relative_to(REPO_ROOT) else tests
    return [python, "-m", "pytest", str(shown), *PYTEST_OPTIONS, *pytest_args]


def environment(extra_paths: list[str] | tuple[str, ...] = (), base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with ``PYTHONPATH`` = the repository root and ``extra_paths``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *(str(Path(p).resolve()) for p in extra_paths)])
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, pytest_args = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- go to pytest.")
    parser.add_argument("name", nargs="?", help="model folder name under images/")
    parser.add_argument("--python", default=sys.executable, help="Python to run pytest with (default: this one)")
    parser.add_argument("--extra-path", action="append", default=[], metavar="DIR",
                        help="also put DIR on PYTHONPATH (after the repository root); repeatable")
    parser.add_argument("--list", action="store_true", help="print the models that have tests and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(models_with_tests(IMAGES)))
        return 0
    if not args.name:
        parser.error("give a model name (or --list)")
    folder = IMAGES / args.name
    if not folder.is_dir():
        print(f"run_model_tests: no model folder {folder}", file=sys.stderr)
        return 2
    if not (folder / "tests").is_dir():
        print(f"run_model_tests: {args.name}: no tests (no {folder / 'tests'})")
        return 0
    cmd = command(args.name, args.python, pytest_args, IMAGES)
    print(f"run_model_tests: {args.name}: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=environment(args.extra_path)).returncode


if __name__ == "__main__":
    sys.exit(main())
