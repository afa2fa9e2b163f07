"""Cost of the generation metrics: fingerprinting throughput and end-to-end scoring time.

1. CrystalNN + Magpie fingerprints per second on ``--n-fingerprint`` (200) real perov_5 test
   crystals, serially (``n_jobs=1``) and over all cores (``n_jobs=None``; the first parallel call
   includes starting the fork server and the worker pool), and their ratio.
2. The time of :func:`runner.tasks.generation.score` on ``--n-generated`` (1,000) "generated"
   crystals against the full perov_5 test set (3,785 crystals), first with a cold fingerprint cache
   (reference fingerprints computed and written), then with a warm one (read back), and the ratio.
   The "generated" crystals are stand-ins, not model output: the first 1,000 real crystals of
   perov_5 ``val.csv`` with every fractional coordinate moved by a uniform random amount in
   [-0.02, 0.02] (seed 0).

Prints only, never asserts. Usage:

    .venv/bin/python bench/generation_metrics.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from runner import fingerprints
from runner.tasks import generation

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MATEVAL_DATA", REPO_ROOT.parent / "shared" / "data")))
    parser.add_argument("--n-fingerprint", type=int, default=200)
    parser.add_argument("--n-generated", type=int, default=1000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    perov = args.data / "perov_5"
    print(f"machine: {cores} CPU cores (os.cpu_count); load average {os.getloadavg()[0]:.2f} at start")

    # 1. fingerprint throughput
    sample = read_structures(perov / "test.csv", args.n_fingerprint)
    t = time.perf_counter()
    serial = fingerprints.compute_fingerprints(sample, n_jobs=1)
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    parallel = fingerprints.compute_fingerprints(sample, n_jobs=None)
    t_parallel = time.perf_counter() - t
    same = np.array_equal(serial[0], parallel[0], equal_nan=True) and np.array_equal(serial[1], parallel[1], equal_nan=True)
    n = len(sample)
    print(f"\n[1] CrystalNN+Magpie fingerprints of {n} perov_5 test crystals")
    print(f"    serial (n_jobs=1):          {t_serial:7.2f} s  {n / t_serial:7.1f} crystals/s")
    print(f"    parallel (n_jobs={cores}, pool start included): {t_parallel:7.2f} s  {n / t_parallel:7.1f} crystals/s")
    print(f"    speed-up parallel/serial:   {t_serial / t_parallel:7.2f}x   (identical arrays: {same})")

    # 2. scoring 1,000 stand-in generated crystals against the full test set
    reference = read_structures(perov / "test.csv")
    generated = perturbed(read_structures(perov / "val.csv", args.n_generated), 0.02, seed=0)
    print(f"\n[2] score {len(generated)} stand-in generated crystals (perov_5 val.csv, fractional coordinates "
          f"perturbed by U(-0.02, 0.02)) against {len(reference)} perov_5 test crystals, n_jobs={cores}")
    with tempfile.TemporaryDirectory(prefix="mateval-bench-fp-") as cache:
        runs = []
        for label in ("cold cache", "warm cache"):
            t = time.perf_counter()
            metrics, details = generation.score(generated, reference, dataset="perov_5", cache_dir=Path(cache),
                                                n_jobs=None)
            wall = time.perf_counter() - t
            runs.append(wall)
            print(f"    {label}: {wall:7.2f} s (details.seconds {details['seconds']:.2f}, "
                  f"cache hit {details['fingerprint_cache_hit']})")
        print(f"    speed-up warm/cold:          {runs[0] / runs[1]:7.2f}x")
        print("    metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        print(f"    n_valid={details['n_valid']}, fingerprint_failures={details['fingerprint_failures']}, "
              f"reference_fingerprint_failures={details['reference_fingerprint_failures']}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
