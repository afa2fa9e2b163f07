"""Cost of scoring generated crystals: serial against parallel, cold against warm, same numbers.

Scores ``--n-generated`` (1,000) "generated" crystals against the full perov_5 test set (3,785
crystals) with :func:`runner.tasks.generation.score`, four times in this one process:

1. serial: ``n_jobs=1``, no fingerprint cache (every fingerprint computed here);
2. parallel cold: ``n_jobs`` = all cores, no cache, and the first process pool of this process, so
   the fork server's start (importing pymatgen and matminer) and the workers' start are included;
3. parallel, fork server warm: the same again, the fork server already running (a new pool);
4. parallel, reference cache warm: the reference fingerprints read from the cache written by a
   parallel run, only the generated crystals fingerprinted (every later scoring of a model on the
   same test set; each scoring stage is a new process, so its fork server is cold).

Prints each wall time and its speed-up over the serial run, and checks that the four runs give
identical metrics and details (timings aside), bit for bit; a difference stops the script with an
error. It never asserts on a time: the machine may be shared, and the load average is printed.

The "generated" crystals are stand-ins, not model output: the first ``--n-generated`` real crystals
of perov_5 ``val.csv`` with every fractional coordinate moved by a uniform random amount in
[-0.02, 0.02] (seed 0).

Usage (from the repository root; about 10 minutes on 2 cores):

    .venv/bin/python bench/generation_metrics.py [--data ../shared/data] [--n-generated 1000]
        [--n-reference N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from runner.tasks import generation  # noqa: E402


def read_structures(path: Path, nrows: int | None = None) -> list:
    from pymatgen.core import Structure

    frame = pd.read_csv(path, nrows=nrows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(c, fmt="cif") for c in frame["cif"]]


def perturbed(structures: list, amplitude: float, seed: int) -> list:
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    out = []
    for s in structures:
        frac = s.frac_coords + rng.uniform(-amplitude, amplitude, size=s.frac_coords.shape)
        out.append(Structure(s.lattice, s.species, frac % 1.0))
    return out


def comparable(metrics: dict, details: dict) -> str:
    """Metrics and details without timings and cache flags, as exact JSON (floats by repr)."""
    kept = {k: v for k, v in details.items() if k not in ("seconds", "fingerprint_cache_hit")}
    return json.dumps({"metrics": metrics, "details": kept}, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MATEVAL_DATA", REPO_ROOT.parent / "shared" / "data")))
    parser.add_argument("--n-generated", type=int, default=1000)
    parser.add_argument("--n-reference", type=int, default=None, help="first N test crystals (smoke runs); default all")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    perov = args.data / "perov_5"
    reference = read_structures(perov / "test.csv", args.n_reference)
    generated = perturbed(read_structures(perov / "val.csv", args.n_generated), 0.02, seed=0)
    print(f"machine: {cores} CPU cores (os.cpu_count); load average {os.getloadavg()[0]:.2f} at start")
    print(f"score {len(generated)} stand-in generated crystals (perov_5 val.csv, fractional coordinates perturbed "
          f"by U(-0.02, 0.02)) against {len(reference)} perov_5 test crystals\n")

    runs: list[tuple[str, float, str, dict]] = []

    def run(label: str, n_jobs: int | None, cache_dir: Path | None) -> None:
        t = time.perf_counter()
        metrics, details = generation.score(generated, reference, dataset="perov_5", cache_dir=cache_dir,
                                            n_jobs=n_jobs)
        wall = time.perf_counter() - t
        runs.append((label, wall, comparable(metrics, details), metrics))
        speed = "" if len(runs) == 1 else f"  {runs[0][1] / wall:5.2f}x serial, identical: {runs[-1][2] == runs[0][2]}"
        print(f"  {label:<44s} {wall:8.1f} s{speed}   (load average {os.getloadavg()[0]:.2f})", flush=True)

    with tempfile.TemporaryDirectory(prefix="mateval-bench-fp-") as cache:
        run("1. serial (n_jobs=1, no cache)", 1, None)
        run(f"2. parallel cold (n_jobs={cores}, no cache)", None, None)
        run(f"3. parallel, fork server warm (n_jobs={cores})", None, Path(cache))
        run(f"4. parallel, reference cache warm (n_jobs={cores})", None, Path(cache))

    identical = all(r[2] == runs[0][2] for r in runs)
    print(f"\nidentical metrics and details in all four runs (bit for bit): {identical}")
    print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in runs[0][3].items()))
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other processes share these cores)")
    if not identical:
        for label, _, text, _ in runs[1:]:
            if text != runs[0][2]:
                print(f"DIFFERS from serial: {label}", file=sys.stderr)
        raise SystemExit("the parallel runs do not reproduce the serial numbers")


if __name__ == "__main__":
    main()
