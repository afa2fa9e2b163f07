"""The harness's own cost: telemetry overhead on training, the sampler's CPU use, and the time
from the command line to a result split into set-up, run and collection per backend.

1. Training throughput of the same Matformer fit (perov5_heat_ref, the first ``--train`` crystals
   of the embedded subset, ``--epochs`` epochs, bench hyperparameters) with telemetry off, at the
   default 1 s sampling and at 0.1 s. The timed stretch is the whole ``with Telemetry(...)`` block
   around the fit (start and stop of the sampler included). The three configurations run once per
   block, in a random order per block, ``--repeats`` blocks; each block gives a paired on/off time
   ratio per interval, so drift of the machine between blocks cancels. Prints the median ratio
   over blocks with a 95 % bootstrap confidence interval (``scipy.stats.bootstrap``, BCa), the
   ratio of medians and crystals/s. The goal is under 1 % slowdown at 1 s and under 2 % at 0.1 s.
   ``--threads`` sets torch's intra-op threads (default: torch's own choice).
2. The telemetry's fixed cost: entering the ``with`` block and leaving it (the final snapshot
   and the thread's end), medians over 20, and the sampler's own CPU use: a
   :class:`runner.telemetry.Telemetry` sampling alone for ``--idle-seconds`` at each interval, as
   process CPU seconds per wall second (% of one core).
3. ``mateval bench`` for a tiny Matformer run (1 epoch, 32/8/32 crystals) on each backend of
   ``--backends``, ``--repeats`` times: the command's own timings line (set-up: interpreter start,
   imports, plan, run directory; runs: the backend until the runner's result is back; collection:
   finalize, publish, summary, report), medians.

Parts 1 and 2 train Matformer in this process, so they run in Matformer's own environment
(:mod:`orchestrator.envs`; mateval's ``.venv`` has no torch_geometric): started from ``.venv``, the
script runs them again as a child in that environment, then part 3 itself.

Usage (quiet machine; Docker needs a daemon and ``mateval/local-base:latest``):

    .venv/bin/python bench/harness_overhead.py --repeats 3 --backends local,docker
    .venv/bin/python bench/harness_overhead.py --repeats 30 --skip sampler,backends
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from orchestrator import registry
from runner.telemetry import Telemetry
from runner.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TIMINGS = re.compile(r"timings: set-up ([\d.]+) s, runs ([\d.]+) s, collection ([\d.]+) s")


def fit_throughput(interval: float | None, train, val, epochs: int, seed: int = 0) -> float:
    """Crystals per second of one Matformer fit, with a Telemetry at ``interval`` (None: off)."""
    manifest = registry.get_model("matformer")
    task = get_task("perov5_heat_ref")
    effective, _ = manifest.hyperparameters("bench", {"epochs": epochs})
    adapter_class = manifest.load_entry_point()
    torch.manual_seed(seed)
    adapter = adapter_class(task.spec, effective, torch.device("cpu"), seed)
    start = time.perf_counter()
    if interval is None:
        adapter.fit(train, val, lambda record: None)
    else:
        with Telemetry(interval, None) as telemetry:
            with telemetry.phase("train"):
                adapter.fit(train, val, lambda record: None)
    return len(train) * epochs / (time.perf_counter() - start)


def sampler_cpu(interval: float, seconds: float) -> float:
    """Percent of one core the sampler uses while nothing else runs."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with Telemetry(interval, None):
        time.sleep(seconds)
    return 100.0 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def enter_exit_ms(interval: float, repeats: int = 20) -> tuple[float, float]:
    """Median milliseconds to enter and to leave a Telemetry block whose body outlasts the priming."""
    enters, exits = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with Telemetry(interval, None) as telemetry:
            t1 = time.perf_counter()
            with telemetry.phase("train"):
                time.sleep(0.25)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        enters.append(t1 - t0)
        exits.append(t3 - t2)
    return 1000 * statistics.median(enters), 1000 * statistics.median(exits)


def ratio_summary(off: list[float], on: list[float]) -> str:
    """Paired on/off time ratios (speeds in, so off/on): median over blocks, 95 % bootstrap CI."""
    ratios = np.asarray(off) / np.asarray(on)
    text = f"median ratio {np.median(ratios):.4f}"
    if len(ratios) >= 3 and np.ptp(ratios) > 0:
        ci = stats.bootstrap((ratios,), np.median, confidence_level=0.95, n_resamples=9999,
                             random_state=np.random.default_rng(0)).confidence_interval
        text += f" (95 % CI {ci.low:.4f} to {ci.high:.4f})"
    return text + f", ratio of medians {statistics.median(off) / statistics.median(on):.4f}"


def cli_timings(backend: str, results: Path, base_image: str) -> tuple[float, float, float]:
    """(set-up, runs, collection) seconds from one tiny ``mateval bench`` run."""
    command = [sys.executable, "-m", "orchestrator.cli", "bench", "--model", "matformer", "--task", "perov5_heat_ref",
               "--backend", backend, "--set", "epochs=1", "--max-samples", "train=32,val=8,test=32", "--quiet",
               "--results-dir", str(results), "--gpus", "none"]
    if backend == "docker":
        command += ["--base-image", base_image]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    match = TIMINGS.search(out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"{backend}: mateval bench failed (exit {out.returncode}):\n{out.stdout[-3000:]}{out.stderr[-2000:]}")
    return tuple(float(v) for v in match.groups())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--backends", default="local,docker")
    parser.add_argument("--base-image", default="mateval/local-base:latest")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: throughput, sampler, backends")
    args = parser.parse_args()
    skip = set(args.skip.split(","))

    if args.threads:
        torch.set_num_threads(args.threads)
    model_parts = {"throughput", "sampler"} - skip
    if model_parts and importlib.util.find_spec("torch_geometric") is None:
        from orchestrator import envs

        env = envs.ensure(registry.get_model("matformer").folder)
        argv = [a for a in sys.argv[1:]]
        subprocess.run([str(env.python), __file__, *argv, "--skip", ",".join(skip | {"backends"})], check=True,
                       env=dict(os.environ, **env.variables()))
        skip |= model_parts
    if "throughput" not in skip:
        dataset = get_task("perov5_heat_ref").load("subset", registry.data_roots(), {"train": args.train, "val": 16})
        train, val = dataset.splits["train"], dataset.splits["val"]
        configs = {"off": None, "1 s": 1.0, "0.1 s": 0.1}
        speeds: dict[str, list[float]] = {name: [] for name in configs}
        fit_throughput(None, train[:16], val, 1)  # warm-up: imports, first graph construction
        order = random.Random(0)
        for block in range(args.repeats):
            names = list(configs)
            order.shuffle(names)
            for name in names:
                speeds[name].append(fit_throughput(configs[name], train, val, args.epochs))
            print(f"  block {block + 1}/{args.repeats}: " + ", ".join(f"{n} {speeds[n][-1]:.2f}" for n in configs),
                  flush=True)
        print(f"training throughput, Matformer, {len(train)} crystals x {args.epochs} epochs, "
              f"{torch.get_num_threads()} torch threads, {args.repeats} blocks:")
        for name, values in speeds.items():
            line = f"  telemetry {name:5s}: median {statistics.median(values):6.2f} crystals/s"
            if name != "off":
                line += f"; on/off time {ratio_summary(speeds['off'], values)}"
            print(line)
    if "sampler" not in skip:
        for interval in (1.0, 0.1):
            enter, leave = enter_exit_ms(interval)
            print(f"telemetry at {interval:g} s: enter {enter:.2f} ms, leave {leave:.2f} ms (median of 20); "
                  f"sampler alone {sampler_cpu(interval, args.idle_seconds):.2f} % of one core "
                  f"(over {args.idle_seconds:g} s)")
    if "backends" not in skip:
        with tempfile.TemporaryDirectory(prefix="mateval-harness-") as tmp:
            for backend in args.backends.split(","):
                rows = [cli_timings(backend, Path(tmp) / backend, args.base_image) for _ in range(args.repeats)]
                setup, run, collect = (statistics.median(column) for column in zip(*rows))
                print(f"mateval bench, tiny Matformer run, {backend:6s} (median of {args.repeats}): set-up {setup:.2f} s, "
                      f"run {run:.2f} s, collection {collect:.2f} s; each: "
                      + "; ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in rows))


if __name__ == "__main__":
    main()
