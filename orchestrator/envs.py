"""One Python environment per model for the local and Slurm backends (no Docker).

A model's environment holds exactly what its Docker image gets: torch (the base image's; here
``MATEVAL_TORCH_SPEC``, by default the torch version of mateval's own environment), the runner's
pinned dependencies (``images/base/requirements.lock``) and the model's own
``images/<model>/requirements.lock``, both installed with ``pip install --no-deps
--require-hashes`` and checked with ``pip check``, as the images do. mateval's own ``.venv`` holds
no model dependency; the runner and the metrics come from the repository (``PYTHONPATH``).

An environment is named after the sha256 of what it is built from (the locks' requirements, the
torch spec and the Python version): models whose locks are identical share one, an unchanged model
reuses its environment, and a changed lock makes a new one. It is created on first use under
``MATEVAL_ENVS`` (default ``<repo>/.envs``) in a temporary folder renamed into place when
complete (a half-built environment is never used), under a file lock (two suites never build the
same environment at once), with its progress and timings printed.

``python -m orchestrator.envs python MODEL`` prints the environment's Python (creating it);
``python -m orchestrator.envs test-tools`` prints a folder with pytest and hypothesis for running
a model's own tests in its environment (``PYTHONPATH``), kept apart so that the environment stays
exactly the image's.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator, Sequence

from orchestrator.registry import REPO_ROOT

ENVS_VARIABLE = "MATEVAL_ENVS"
TORCH_SPEC_VARIABLE = "MATEVAL_TORCH_SPEC"
BASE_LOCK = REPO_ROOT / "images" / "base" / "requirements.lock"
ROOT_LOCK = REPO_ROOT / "requirements.lock"
STAMP = "mateval-env.json"
#: what runs a model's tests beside its environment (versions from requirements.lock)
TEST_TOOLS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "hypothesis", "attrs", "sortedcontainers")
#: matbench, only to check ``mateval export --format matbench`` files in tests: installed with
#: ``--no-deps`` beside .venv (matbench 0.6 pins scipy 1.7.3 and scikit-learn 1.0.1; it imports
#: matminer's dataset metadata and six, nothing else of their stacks)
MATBENCH_TOOLS = ("matbench==0.6", "matminer==0.7.4", "six==1.17.0")
_PIP_SHOWN = re.compile(r"^(Collecting|Installing collected|Successfully installed|ERROR|No broken)")


class ModelEnvError(RuntimeError):
    """Creating a model environment failed; the message names the step and ends with pip's output."""


def envs_root() -> Path:
    """Where environments live: ``MATEVAL_ENVS`` or ``<repo>/.envs``."""
    return Path(os.environ.get(ENVS_VARIABLE) or REPO_ROOT / ".envs").resolve()


def torch_spec() -> str:
    """The torch requirement of a model environment: ``MATEVAL_TORCH_SPEC``, else the torch version
    installed in this interpreter without its local label (``torch==2.13.0``), else ``torch``."""
    spec = os.environ.get(TORCH_SPEC_VARIABLE)
    if spec:
        return spec
    try:
        return "torch==" + metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        return "torch"


@dataclass(frozen=True)
class ModelEnv:
    """A model environment (it may not exist yet).

    Attributes:
        path: its folder.
        locks: the lock files it is built from, base first.
        torch: the torch requirement.
        sha256: sha256 of the locks' requirements, the torch requirement and the Python version.
    """

    path: Path
    locks: tuple[Path, ...]
    torch: str
    sha256: str

    @property
    def name(self) -> str:
        """The folder's name (``env-<sha256[:16]>``)."""
        return self.path.name

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.path / "bin" / "python"

    def exists(self) -> bool:
        """True when the environment was completed (its stamp file is there)."""
        return (self.path / STAMP).is_file() and self.python.exists()

    def variables(self) -> dict[str, str]:
        """Variables for a runner started in this environment: the repository on ``PYTHONPATH``
        (before any inherited entries, e.g. plugins), no user site, and the identity the runner
        records (:func:`runner.environment.model_env`)."""
        inherited = os.environ.get("PYTHONPATH")
        return {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT)] + ([inherited] if inherited else [])),
                "PYTHONNOUSERSITE": "1", "MATEVAL_ENV_NAME": self.name, "MATEVAL_ENV_SHA256": self.sha256,
                "MATEVAL_ENV_LOCKS": os.pathsep.join(str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT)
                                                     else str(p) for p in self.locks)}


def _requirements(lock: Path) -> str:
    """A lock's content without comments and blank lines (what pip installs from it)."""
    lines = (line.strip() for line in lock.read_text().splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def model_locks(model_folder: Path) -> tuple[Path, ...]:
    """The locks a model's environment is built from: the base lock, then the model's when it pins
    anything (SyMat's lock, for one, holds only comments)."""
    own = Path(model_folder).resolve() / "requirements.lock"
    return (BASE_LOCK, own) if own.is_file() and _requirements(own) else (BASE_LOCK,)


def env_for(model_folder: Path) -> ModelEnv:
    """The environment of the model in ``model_folder`` (not created)."""
    locks = model_locks(model_folder)
    spec = torch_spec()
    digest = hashlib.sha256()
    for lock in locks:
        digest.update(hashlib.sha256(_requirements(lock).encode()).digest())
    digest.update(f"{spec}\0{platform.python_version()}\0{sys.implementation.cache_tag}".encode())
    sha = digest.hexdigest()
    return ModelEnv(envs_root() / f"env-{sha[:16]}", locks, spec, sha)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip(python: Path, args: Sequence[str], step: str, say: Callable[[str], None]) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        line = line.rstrip()
        lines.append(line)
        if _PIP_SHOWN.match(line):
            say(f"  {line[:160]}")
    if process.wait() != 0:
        tail = "\n".join(l for l in lines if "is ignored: it is neither" not in l)[-4000:]
        raise ModelEnvError(f"{step}: {' '.join(command)} exited with status {process.returncode}:\n{tail}")


def relocate_scripts(old: Path, new: Path, prefix_only: bool = False) -> list[Path]:
    """Point the scripts of an environment built in ``old`` and renamed to ``new`` at ``new``.

    pip writes each console script (``mace_run_train``, ``nequip-train``, ``dp``) with the absolute
    path of the interpreter it was installed with as its ``#!`` line, and ``bin/activate`` names the
    folder too; an environment built in a temporary folder and then renamed would otherwise have
    scripts that fail with "No such file or directory". Rewrites every file directly in
    ``<old>/bin`` (``<new>/bin`` with ``prefix_only``) whose first line is ``#!`` or whose name
    starts with ``activate``, replacing ``old`` by ``new``. ``prefix_only``: ``old`` is a prefix
    (``.env-<sha>.tmp-``) followed by a process id: heals an environment built before this
    function existed. Returns the files rewritten.

    Raises:
        OSError: a script cannot be read or written.
    """
    bin_dir = (new if prefix_only else old) / "bin"
    if not bin_dir.is_dir():
        return []
    pattern = re.compile(re.escape(str(old)) + (r"\d+" if prefix_only else "") + r"(?![\w.-])")
    changed = []
    for path in sorted(bin_dir.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head != b"#!" and not path.name.startswith("activate"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        updated = pattern.sub(str(new), text)
        if updated != text:
            mode = path.stat().st_mode
            path.write_text(updated, encoding="utf-8")
            os.chmod(path, mode)
            changed.append(path)
    return changed


def ensure(model_folder: Path, say: Callable[[str], None] = print) -> ModelEnv:
    """The model's environment, created first if it does not exist (see the module docstring).

    Raises:
        ModelEnvError: a step failed (venv, torch, a lock, ``pip check``), with pip's output.
    """
    env = env_for(model_folder)
    if env.exists():
        relocate_scripts(env.path.with_name(f".{env.name}.tmp-"), env.path, prefix_only=True)
        return env
    with _locked(env.path.with_name(env.name + ".lock")):
        if env.exists():  # another process built it while we waited
            return env
        started = time.monotonic()
        tmp = env.path.with_name(f".{env.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        steps = [("venv", None), (env.torch, [env.torch])]
        steps += [(str(lock.relative_to(REPO_ROOT)), ["--no-deps", "--require-hashes", "-r", str(lock)])
                  for lock in env.locks]
        say(f"creating the environment {env.name} of {Path(model_folder).name} (once; reused while its locks "
            f"are unchanged): {len(steps) + 1} steps")
        try:
            for index, (what, args) in enumerate(steps, start=1):
                step_started = time.monotonic()
                say(f"[{index}/{len(steps) + 1}] {what}")
                if args is None:
                    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, text=True)
                else:
                    _pip(tmp / "bin" / "python", args, what, say)
                say(f"[{index}/{len(steps) + 1}] {what}: done in {time.monotonic() - step_started:.1f} s "
                    f"({time.monotonic() - started:.0f} s so far)")
            check = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
            if check.returncode != 0:
                raise ModelEnvError(f"pip check: {check.stdout.strip()} {check.stderr.strip()}")
            say(f"[{len(steps) + 1}/{len(steps) + 1}] pip check: {check.stdout.strip()}")
            stamp = {"name": env.name, "sha256": env.sha256, "torch": env.torch, "python": platform.python_version(),
                     "locks": [str(p) for p in env.locks], "model": Path(model_folder).name,
                     "seconds": round(time.monotonic() - started, 1)}
            (tmp / STAMP).write_text(json.dumps(stamp, indent=1, allow_nan=False) + "\n")
            relocate_scripts(tmp, env.path)
            shutil.rmtree(env.path, ignore_errors=True)  # an incomplete one (no stamp) from a crash
            os.rename(tmp, env.path)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelEnvError(f"venv: {exc.stderr or exc}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        say(f"environment {env.name} ready in {time.monotonic() - started:.1f} s: {env.path}")
    return env


def _pinned(names: Sequence[str]) -> list[str]:
    """``name==version`` of each of ``names`` as pinned in the root ``requirements.lock``."""
    pins = {}
    for line in ROOT_LOCK.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = f"{name}=={version}"
    return [pins[n] for n in names if n in pins]


def _ensure_target(prefix: str, requirements: list[str], what: str, say: Callable[[str], None]) -> Path:
    """``<envs root>/<prefix>-<sha>``: ``requirements`` installed ``--no-deps`` with ``pip --target``
    once (built in a temporary folder renamed into place, under a file lock)."""
    sha = hashlib.sha256(("\n".join(requirements) + platform.python_version()).encode()).hexdigest()[:16]
    folder = envs_root() / f"{prefix}-{sha}"
    if (folder / STAMP).is_file():
        return folder
    with _locked(folder.with_name(folder.name + ".lock")):
        if (folder / STAMP).is_file():
            return folder
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"installing the {what} ({', '.join(requirements)}, --no-deps) into {folder}")
        _pip(Path(sys.executable), ["--no-deps", "--target", str(tmp), *requirements], what, say)
        (tmp / STAMP).write_text(json.dumps({"requirements": requirements}, allow_nan=False) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(tmp, folder)
    return folder


def ensure_test_tools(say: Callable[[str], None] = print) -> Path:
    """A folder with pytest and hypothesis (versions of ``requirements.lock``) for ``PYTHONPATH``
    when a model's tests run in its environment; created once."""
    return _ensure_target("test-tools", _pinned(TEST_TOOLS), "test tools", say)


def ensure_matbench_tools(say: Callable[[str], None] = print) -> Path:
    """A folder with :data:`MATBENCH_TOOLS` (``--no-deps``) for ``sys.path``, so that tests can
    load exported files with ``matbench.bench.MatbenchBenchmark``; created once.

    Raises:
        ModelEnvError: pip failed (no index reachable), pip's output named.
    """
    return _ensure_target("matbench-tools", list(MATBENCH_TOOLS), "matbench tools", say)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.envs python MODEL`` | ``test-tools`` | ``list``."""
    from orchestrator.registry import get_model

    parser = argparse.ArgumentParser(prog="python -m orchestrator.envs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    py = sub.add_parser("python", help="print the model environment's python (created on first use)")
    py.add_argument("model")
    sub.add_parser("test-tools", help="print the folder holding pytest and hypothesis for model tests")
    sub.add_parser("matbench-tools", help="print the folder holding matbench (tests of mateval export)")
    args = parser.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731 - stdout carries the answer
    try:
        if args.command == "python":
            print(ensure(get_model(args.model).folder, log).python)
        elif args.command == "matbench-tools":
            print(ensure_matbench_tools(log))
        else:
            print(ensure_test_tools(log))
    except ModelEnvError as exc:
        print(f"mateval: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
