"""The cost of a model's own environment on the local backend (orchestrator/envs.py): creating it
cold, and finding it again warm.

For each model named (default: matformer and pdos), in a fresh temporary ``MATEVAL_ENVS`` folder
(so nothing is reused; pip's own download cache stays warm, as on any machine after the first
install):

1. cold: :func:`orchestrator.envs.ensure` creates the environment (venv, torch, the base lock, the
   model's lock, pip check); the time of each step comes from its progress lines;
2. warm: ``ensure`` again, ``--repeats`` times (the environment exists: a hash of the locks and a
   stamp file), median;
3. start-up: ``python -c "import runner.run"`` in the environment, median of ``--repeats``, the
   interpreter start a run pays in either case.

It prints one line per model with the cold and warm seconds and their ratio.

    .venv/bin/python bench/model_env.py [--models matformer,pdos] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator import envs, registry  # noqa: E402

STEP = re.compile(r"^\[(\d+)/(\d+)\] (.+): done in ([\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="matformer,pdos")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mateval-envs-") as root:
        os.environ[envs.ENVS_VARIABLE] = root
        for name in args.models.split(","):
            folder = registry.get_model(name).folder
            steps: list[tuple[str, float]] = []

            def say(line: str) -> None:
                match = STEP.match(line)
                if match:
                    steps.append((match.group(3), float(match.group(4))))

            start = time.perf_counter()
            env = envs.ensure(folder, say)
            cold = time.perf_counter() - start
            warm_times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                envs.ensure(folder, say)
                warm_times.append(time.perf_counter() - start)
            warm = statistics.median(warm_times)
            startup = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                subprocess.run([str(env.python), "-c", "import runner.run"], check=True,
                               env=dict(os.environ, **env.variables()))
                startup.append(time.perf_counter() - start)
            size = sum(f.stat().st_size for f in env.path.rglob("*") if f.is_file() and not f.is_symlink())
            print(f"{name}: environment {env.name}, {size / 2**20:.0f} MiB")
            print("  cold steps: " + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in steps))
            print(f"  cold create {cold:.1f} s | warm reuse {warm * 1000:.2f} ms (median of {args.repeats}) | "
                  f"cold/warm {cold / warm:,.0f}x | runner import in the env {statistics.median(startup):.2f} s")


if __name__ == "__main__":
    main()
