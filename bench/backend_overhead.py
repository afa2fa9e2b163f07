"""Overhead of the Docker and Slurm backends over the local backend on the same run.

Runs the same small Matformer run (perov5_heat_ref, first 96/16/128 crystals of the embedded
subset, 1 epoch) ``--repeats`` times on each backend, image already built, and prints per backend
the median wall time from start to result collected (prepare, run, finalize, publish), the
runner's own measured duration (train + predict), and the difference; then each backend's ratio
to local and its extra seconds per run. For Slurm the extra seconds are the scheduling overhead
per job: sbatch, scheduling, submitit's start on the node, and the wait for the next ``sacct``
poll (``--slurm-poll`` seconds apart). Usage (Docker needs a daemon and the local base image,
Slurm a cluster, e.g. ``make local-slurm``):

    .venv/bin/python bench/backend_overhead.py --base-image mateval/local-base:latest --repeats 3
    .venv/bin/python bench/backend_overhead.py --backends local,slurm --slurm-poll 1 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from orchestrator import registry, results
from orchestrator.backends.docker import DockerBackend
from orchestrator.backends.local import LocalBackend
from orchestrator.backends.slurm import SlurmBackend, SlurmConfig
from orchestrator.images import ensure_model_image
from runner.wire import LOG_FILE, RunSpec


def one_run(backend, results_root: Path, manifest, epochs: int) -> tuple[float, float, str]:
    spec = RunSpec(run_id=results.new_run_id("matformer", "perov5_heat_ref", 0), model="matformer",
                   model_dir=str(manifest.folder), task="perov5_heat_ref", data_roots=[str(p) for p in registry.data_roots()],
                   overrides={"epochs": epochs}, max_samples={"train": 96, "val": 16, "test": 128},
                   sampling_interval_s=1.0, backend=backend.name, timeout_s=900)
    start = time.perf_counter()
    staging = results.prepare(results_root, spec)
    results.stage_inputs(spec, staging)
    outcome = backend.run(spec, staging, spec.timeout_s, staging / LOG_FILE)
    result = results.finalize(staging, spec, outcome)
    results.publish(staging, results_root)
    wall = time.perf_counter() - start
    return wall, result["resources"]["overall"].get("duration (s)") or float("nan"), result["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-image", default="mateval/local-base:latest")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--backends", default="local,docker", help="comma-separated: local, docker, slurm")
    parser.add_argument("--slurm-poll", type=float, default=1.0, help="seconds between sacct polls")
    parser.add_argument("--slurm-cpus", type=int, default=None, help="--cpus-per-task (default: the cluster's)")
    args = parser.parse_args()
    manifest = registry.get_model("matformer")
    backends = []
    for name in args.backends.split(","):
        if name == "local":
            backends.append(LocalBackend())
        elif name == "docker":
            backends.append(DockerBackend(args.base_image, gpus="none"))
            ensure_model_image(backends[-1].client, manifest.folder, "matformer", args.base_image, None)  # built beforehand
        elif name == "slurm":
            backends.append(SlurmBackend(SlurmConfig(poll_s=args.slurm_poll, cpus=args.slurm_cpus), say=lambda _: None))
        else:
            raise SystemExit(f"unknown backend {name!r}")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="mateval-bench-") as tmp:
        for backend in backends:
            walls, inner = [], []
            for _ in range(args.repeats):
                wall, duration, status = one_run(backend, Path(tmp), manifest, args.epochs)
                if status != "ok":
                    raise SystemExit(f"{backend.name} run ended {status}")
                walls.append(wall)
                inner.append(duration)
            rows[backend.name] = (statistics.median(walls), statistics.median(inner))
            print(f"{backend.name:6s}: wall {rows[backend.name][0]:6.2f} s (median of {args.repeats}: "
                  f"{', '.join(f'{w:.2f}' for w in walls)}), runner train+predict {rows[backend.name][1]:6.2f} s, "
                  f"outside train+predict {rows[backend.name][0] - rows[backend.name][1]:5.2f} s")
    if "local" in rows:
        local = rows["local"][0]
        for name, (wall, _) in rows.items():
            if name != "local":
                print(f"{name} / local wall-time ratio: {wall / local:.3f}; {name} overhead: {wall - local:+.2f} s per run")


if __name__ == "__main__":
    main()
