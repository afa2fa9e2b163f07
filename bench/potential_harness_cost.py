"""Harness cost of an interatomic potential, side by side: MACE through ``mateval bench`` against
MACE through its own command ``mace_run_train``, on the same data and settings, alternating.

Data: mateval's ``mlearn_si`` task as a run with ``--seed`` sees it (the published mlearn Si
train/test split, validation drawn from train with the seed), truncated like ``--max-samples``
(default ``train=32,val=4,test=10``). The script writes the three splits as extended XYZ
(``REF_energy``, ``REF_forces``, ``config_type``; the test file's config type is ``test`` for all,
so that ``mace_run_train`` prints one error-table row over the whole test set) for ``mace_run_train``; ``mateval bench`` reads
the same structures from the embedded dataset itself.

Settings: MACE's ``bench_hyperparameters`` from ``images/mace/model.yaml``, then ``--set``
overrides (default ``epochs=2``), passed to both: to ``mateval bench`` as ``--set`` and to
``mace_run_train`` as the flags of the same names (``epochs`` as ``--max_num_epochs``), with
``--E0s average``, ``--loss weighted``, ``--error_table PerAtomRMSE``, the seed and the CPU.

Each repeat runs both commands once, in alternating order (mateval first in odd repeats), in MACE's
own environment (``python -m orchestrator.envs python mace``). Timed: the whole command's wall
clock, from start to exit (for mateval: preparing the run, the model stage, scoring, publishing;
for ``mace_run_train``: reading the files, training, its final error tables on train, validation
and test, saving the model). Prints per-repeat times, the median ratio mateval / native (goal
≤ 1.05) and the load average (the ratio means little on a loaded machine).

Metric agreement, two checks:

1. **Scoring**: ``mace_eval_configs`` applies the natively trained model to the test file, and
   mateval's own metric functions (:func:`metrics.potential.energy_rmse_per_atom`,
   :func:`metrics.potential.force_rmse`) score its predictions; these are compared with the test
   row of ``mace_run_train``'s printed error table (printed to 0.1 meV, so agreement within
   0.05 meV plus float noise is exact agreement).
2. **Training**: the test errors of the mateval run (``result.json``) beside the native run's
   printed test errors. Both train MACE with the same settings and seed but through different
   loops (mateval drives mace-torch's ``train_one_epoch``; the data order differs), so these agree
   only as two training runs do; the difference is printed, not checked.

Usage (from the repository root; about 10-15 minutes on 2 quiet cores with the defaults):

    .venv/bin/python bench/potential_harness_cost.py [--repeats 2] [--max-samples train=32,val=4,test=10]
        [--set epochs=2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metrics import potential as pm  # noqa: E402
from orchestrator.cli import parse_max_samples  # noqa: E402
from runner.tasks import get_task  # noqa: E402

#: model.yaml hyperparameters that are mateval's own, not mace_run_train flags
OWN = {"epochs", "foundation_model", "finetune_mode", "lora_rank", "lora_alpha"}
#: a row of a PrettyTable error table: name, RMSE E / meV / atom, RMSE F / meV / A, relative F RMSE %
TABLE_ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*([-\d.]+)\s*\|\s*([-\d.]+)\s*\|\s*([-\d.]+)\s*\|\s*$")


def write_extxyz(samples, path: Path, config_type: str | None = None) -> None:
    """Write ``samples`` (mateval ``Sample``s) as extended XYZ with ``REF_energy``/``REF_forces``
    and their config type (``config_type`` instead when given: ``mace_run_train`` prints one
    error-table row per config type of a test file, and one row over the whole test set is wanted)."""
    import ase.io
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for s in samples:
        atoms = AseAtomsAdaptor.get_atoms(s.structure)
        atoms.info["config_type"] = config_type or str((s.info or {}).get("config_type", "Default"))
        atoms.info["REF_energy"] = float(s.target["energy"])
        atoms.arrays["REF_forces"] = np.asarray(s.target["forces"], dtype=np.float64)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def mace_flags(hp: dict) -> list[str]:
    """``mace_run_train`` flags of the hyperparameters (booleans are store_true switches)."""
    flags = ["--max_num_epochs", str(int(hp["epochs"]))]
    for name, value in hp.items():
        if name in OWN:
            continue
        if isinstance(value, bool):
            flags += [f"--{name}"] if value else []
        else:
            flags += [f"--{name}", str(value)]
    return flags


def settings(overrides: list[str]) -> tuple[dict, list[str]]:
    manifest = yaml.safe_load((REPO / "images" / "mace" / "model.yaml").read_text())
    hp = {**manifest["hyperparameters"], **manifest.get("bench_hyperparameters", {})}
    sets = []
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in hp:
            raise SystemExit(f"--set {item}: unknown MACE hyperparameter {name!r}")
        hp[name] = yaml.safe_load(value)
        sets.append(item)
    return hp, sets


def test_row(log: str) -> tuple[float, float]:
    """``(RMSE E meV/atom, RMSE F meV/Å)`` of the last error-table row naming the test set."""
    rows = [m for line in log.splitlines() if (m := TABLE_ROW.match(line.strip()))]
    tests = [m for m in rows if "test" in m.group(1).lower()]
    if not tests:
        raise RuntimeError("mace_run_train printed no error-table row for the test set:\n" + log[-3000:])
    return float(tests[-1].group(2)), float(tests[-1].group(3))


def run_native(python: Path, work: Path, hp: dict, seed: int, tag: str) -> tuple[float, str, Path]:
    out_dir = work / f"native-{tag}"
    out_dir.mkdir()
    command = [str(python.parent / "mace_run_train"), "--name", "native", "--work_dir", str(out_dir),
               "--train_file", str(work / "train.xyz"), "--valid_file", str(work / "valid.xyz"),
               "--test_file", str(work / "test.xyz"), "--energy_key", "REF_energy", "--forces_key", "REF_forces",
               "--error_table", "PerAtomRMSE", "--loss", "weighted", "--model", "MACE", "--device", "cpu",
               "--seed", str(seed), *mace_flags(hp)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=out_dir)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    log += "".join(f.read_text(errors="replace") for f in sorted((out_dir / "logs").glob("*.log")))
    if proc.returncode != 0:
        raise RuntimeError(f"mace_run_train failed ({proc.returncode}):\n{log[-4000:]}")
    models = sorted(out_dir.glob("native*.model"))
    models = [m for m in models if "compiled" not in m.name] or models
    return seconds, log, models[0]


def run_mateval(work: Path, sets: list[str], limits: str, seed: int, tag: str) -> tuple[float, dict]:
    results = work / f"mateval-{tag}"
    command = [str(REPO / ".venv" / "bin" / "mateval"), "bench", "--backend", "local", "--model", "mace",
               "--task", "mlearn_si", "--max-samples", limits, "--seed", str(seed), "--results-dir", str(results),
               "--no-report", *[x for item in sets for x in ("--set", item)]]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"mateval bench failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    (result_file,) = [p for p in results.glob("*/result.json")]
    result = json.loads(result_file.read_text())
    if result["status"] != "ok":
        raise RuntimeError(f"mateval run ended {result['status']}: {result.get('error')}")
    return seconds, result


def scoring_agreement(python: Path, work: Path, model: Path, test_samples, dtype: str) -> tuple[float, float]:
    """mateval's energy/force RMSE (meV/atom, meV/Å) of the native model's test predictions."""
    import ase.io

    output = work / "native-test-pred.xyz"
    proc = subprocess.run([str(python.parent / "mace_eval_configs"), "--configs", str(work / "test.xyz"), "--model",
                           str(model), "--output", str(output), "--device", "cpu", "--default_dtype", dtype],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mace_eval_configs failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    frames = ase.io.read(output, index=":")
    e_true = [float(s.target["energy"]) for s in test_samples]
    f_true = [np.asarray(s.target["forces"], dtype=np.float64) for s in test_samples]
    e_pred = [float(f.info["MACE_energy"]) for f in frames]
    f_pred = [np.asarray(f.arrays["MACE_forces"], dtype=np.float64) for f in frames]
    n_atoms = [len(f) for f in f_true]
    return (1000.0 * pm.energy_rmse_per_atom(e_true, e_pred, n_atoms),
            1000.0 * pm.force_rmse(np.concatenate(f_true), np.concatenate(f_pred)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-samples", default="train=32,val=4,test=10")
    parser.add_argument("--set", action="append", default=None, metavar="NAME=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hp, sets = settings(args.set if args.set is not None else ["epochs=2"])
    limits = parse_max_samples(args.max_samples)
    python = Path(subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "orchestrator.envs", "python", "mace"],
                                 check=True, capture_output=True, text=True, cwd=REPO).stdout.strip().splitlines()[-1])
    data = get_task("mlearn_si").load("subset", [REPO / "data"], limits, seed=args.seed)
    splits = data.splits
    print(f"mlearn_si, seed {args.seed}: train {len(splits['train'])}, val {len(splits['val'])}, "
          f"test {len(splits['test'])} structures; settings: bench + {' '.join(sets) or 'nothing'}")
    with tempfile.TemporaryDirectory(prefix="mateval-harness-cost-") as tmp:
        work = Path(tmp)
        write_extxyz(splits["train"], work / "train.xyz")
        write_extxyz(splits["val"], work / "valid.xyz")
        write_extxyz(splits["test"], work / "test.xyz", config_type="test")
        times: dict[str, list[float]] = {"mateval": [], "native": []}
        result, log, model = None, "", None
        for repeat in range(1, args.repeats + 1):
            order = ("mateval", "native") if repeat % 2 else ("native", "mateval")
            for which in order:
                if which == "mateval":
                    seconds, result = run_mateval(work, sets, args.max_samples, args.seed, str(repeat))
                else:
                    seconds, log, model = run_native(python, work, hp, args.seed, str(repeat))
                times[which].append(seconds)
                print(f"repeat {repeat}: {which:8s} {seconds:8.1f} s   (load average {os.getloadavg()[0]:.2f})",
                      flush=True)
        ratios = [m / n for m, n in zip(times["mateval"], times["native"])]
        print(f"\nwall clock, median over {args.repeats} repeat(s): mateval {statistics.median(times['mateval']):.1f} s, "
              f"mace_run_train {statistics.median(times['native']):.1f} s")
        print(f"ratio mateval / mace_run_train: median {statistics.median(ratios):.3f} "
              f"(per repeat {', '.join(f'{r:.3f}' for r in ratios)}; goal <= 1.05)")

        native_e, native_f = test_row(log)
        ours_e, ours_f = scoring_agreement(python, work, model, splits["test"], str(hp["default_dtype"]))
        print("\n1. scoring agreement on the native model's test predictions (meV/atom, meV/Å):")
        print(f"   energy RMSE: mace_run_train printed {native_e:.1f}, mateval's metrics {ours_e:.3f} "
              f"(difference {ours_e - native_e:+.3f})")
        print(f"   force RMSE:  mace_run_train printed {native_f:.1f}, mateval's metrics {ours_f:.3f} "
              f"(difference {ours_f - native_f:+.3f})")
        agree = abs(ours_e - native_e) <= 0.051 + 1e-3 * native_e and abs(ours_f - native_f) <= 0.051 + 1e-3 * native_f
        print(f"   {'agree' if agree else 'DISAGREE'} (tolerance: the table's 0.1 meV printing plus 0.1 %)")
        m = result["metrics"]
        print("2. the two training runs' test errors (last repeat):")
        print(f"   energy RMSE: mateval {m['energy_RMSE']:.1f}, mace_run_train {native_e:.1f} meV/atom; "
              f"force RMSE: mateval {m['force_RMSE']:.1f}, mace_run_train {native_f:.1f} meV/Å; "
              f"baseline {result['baseline']['metrics']['energy_RMSE']:.1f} / "
              f"{result['baseline']['metrics']['force_RMSE']:.1f}")
        return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
