"""One benchmark run, start to finish.

``python -m runner RUN_DIR``: the orchestrator (any backend) has written ``RUN_DIR/run_spec.json``
(:class:`RunSpec`) and captures the runner's output as ``run.log``.

``python -m runner --results DIR --model-dir D --task T [--seed N] [--data-root R]...``: a run
without the orchestrator (e.g. a Compose service): the runner makes a new ``DIR/<run_id>/``, writes
the spec there, and keeps its own ``run.log``. Existing run directories are never touched.

The runner writes into the run directory:

- ``result.json`` (always, also when the model raises: ``status`` ``failed`` or ``oom``);
- ``predictions.csv`` (``id``, ``target``, ``prediction`` and, for classification, ``score``);
  for generation instead ``generated.cif`` (every generated crystal) and ``generated.csv`` (one
  row per requested crystal: formula, density, validity, ...);
- ``timeseries.csv`` (resource samples, see :mod:`runner.telemetry`).

The run's log is the runner's standard output, which the orchestrator saves as ``run.log``.
Exit status: 0 when the result is ``ok``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import secrets
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runner import environment
from runner.contract import EpochRecord, ModelAdapter, Sample
from runner.result import SCHEMA_VERSION, utc_now, write_csv, write_result

LOG = logging.getLogger("mateval.runner")
SPEC_FILE = "run_spec.json"
RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.csv"
GENERATED_CIF = "generated.cif"
GENERATED_CSV = "generated.csv"
TIMESERIES_FILE = "timeseries.csv"
LOG_FILE = "run.log"


@dataclass
class RunSpec:
    """What to run; written by the orchestrator as ``run_spec.json``.

    Attributes:
        run_id: unique id, also the run directory's name.
        model: model name (the folder name under ``images/``).
        model_dir: path of the model folder as seen by the runner.
        task: task name from :data:`runner.tasks.TASKS`.
        seed: seed for ``random``, ``numpy`` and ``torch``.
        data_variant: ``"subset"`` (embedded) or ``"full"``.
        data_roots: directories searched for datasets, in order.
        profile: ``"bench"`` (manifest's bench hyperparameters) or ``"paper"``.
        overrides: hyperparameter overrides ``{name: value}``.
        max_samples: optional ``{split: n}`` truncation (smoke tests).
        sampling_interval_s: telemetry period in seconds.
        backend: ``local``, ``docker`` or ``slurm`` (recorded in the result).
        git_sha: mateval's git commit, from the orchestrator.
        probe_batch_size: samples in the FLOP-counting probe batch.
        timeout_s: the wall-clock limit the orchestrator enforces (recorded only).
        num_samples: generation: crystals to generate (``None``: the task's default).
        cache_dir: where scoring may cache reference-set fingerprints (``None``: no cache).
        n_jobs: processes for fingerprinting (``None``: all cores).
        config_sha256: the orchestrator's content hash of the model folder and this configuration
            (recorded in the result; ``--resume`` matches on it).
    """

    run_id: str
    model: str
    model_dir: str
    task: str
    seed: int = 0
    data_variant: str = "subset"
    data_roots: list[str] = field(default_factory=list)
    profile: str = "bench"
    overrides: dict[str, Any] = field(default_factory=dict)
    max_samples: dict[str, int] | None = None
    sampling_interval_s: float = 1.0
    backend: str = "local"
    git_sha: str | None = None
    probe_batch_size: int = 32
    timeout_s: float | None = None
    num_samples: int | None = None
    cache_dir: str | None = None
    n_jobs: int | None = None
    config_sha256: str | None = None

    @classmethod
    def load(cls, path: Path) -> "RunSpec":
        """Read a spec file.

        Raises:
            ValueError: unreadable JSON or unknown/missing fields (file named).
        """
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: invalid run spec: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the spec as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


def new_run_id(model: str, task: str, seed: int) -> str:
    """``<UTC yyyymmddThhmmss>-<model>-<task>-s<seed>-<6 hex>``: unique, sortable by start time."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{model}-{task}-s{seed}-{secrets.token_hex(3)}"


def base_result(spec: RunSpec) -> dict[str, Any]:
    """A schema-valid result skeleton with ``status: failed``, filled in as the run progresses.

    The orchestrator uses it too, to record runs that died before writing a result.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "model": {"name": spec.model, "display_name": spec.model, "entry_point": "unknown"},
        "task": {"name": spec.task, "target": "unknown", "unit": None},
        "task_type": "regression",
        "dataset": {"name": "unknown", "variant": spec.data_variant, "sizes": {}, "sha256": {}},
        "status": "failed",
        "config_sha256": spec.config_sha256,
        "backend": spec.backend,
        "seed": spec.seed,
        "started_at": utc_now(),
        "finished_at": utc_now(),
        "hyperparameters": {"effective": {}, "overridden": {}, "profile": spec.profile},
        "resources": {"sampling_interval_s": spec.sampling_interval_s, "overall": {}, "phases": {}, "unavailable": []},
        "model_stats": {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None},
        "metrics": {},
        "metric_details": {},
        "history": [],
        "environment": environment.describe(spec.git_sha, None, [], None),
        "error": None,
        "files": {"result": RESULT_FILE, "log": LOG_FILE},
        "notes": [],
    }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for host or accelerator out-of-memory errors."""
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _check_generated(values: Any, n: int) -> list:
    from pymatgen.core import Structure

    generated = list(values) if values is not None else []
    if len(generated) != n:
        raise ValueError(f"model returned {len(generated)} entries from generate({n}); expected {n} "
                         "(None for a crystal it could not produce)")
    bad = [i for i, s in enumerate(generated) if s is not None and not isinstance(s, Structure)]
    if bad:
        raise ValueError(f"generate() entries {bad[:5]} are neither pymatgen Structures nor None")
    return generated


def _check_predictions(values: Any, n: int, task_type: str, width: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    expected = (n,) if width is None else (n, width)
    if array.shape != expected:
        raise ValueError(f"model returned predictions of shape {array.shape}, expected {expected}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"model returned {int((~np.isfinite(array)).sum())} non-finite predictions")
    if task_type == "classification" and (array.min() < 0 or array.max() > 1):
        raise ValueError("classification predictions must be positive-class probabilities in [0, 1]")
    return array


def execute(run_dir: Path) -> dict[str, Any]:
    """Run the spec in ``run_dir`` and write its result files. Returns the result written."""
    import torch

    from runner.manifest import load_manifest
    from runner.profiling import profile_model
    from runner.tasks import driver, get_task
    from runner.telemetry import Telemetry

    run_dir = Path(run_dir)
    spec = RunSpec.load(run_dir / SPEC_FILE)
    result = base_result(spec)
    telemetry = None
    phase = "setup"
    try:
        manifest = load_manifest(Path(spec.model_dir))
        result["model"] = {"name": manifest.name, "display_name": manifest.display_name,
                           "entry_point": manifest.data["entry_point"], "paper": manifest.data["paper"],
                           "manifest_sha256": manifest.sha256}
        task = get_task(spec.task)
        result["task"] = {"name": task.spec.name, "target": task.spec.target, "unit": task.spec.unit,
                          "positive_class": task.spec.positive_class, "description": task.description}
        result["task_type"] = task.spec.task_type
        if task.spec.task_type not in manifest.data["task_types"]:
            raise ValueError(f"{manifest.path}: task_types: model {manifest.name!r} does not support "
                             f"{task.spec.task_type!r} (task {task.spec.name!r})")
        effective, overridden = manifest.hyperparameters(spec.profile, spec.overrides)
        result["hyperparameters"] = {"effective": effective, "overridden": overridden, "profile": spec.profile}
        if overridden:
            result["notes"].append("hyperparameters differ from the paper defaults: " + ", ".join(
                f"{k}={v['used']} (paper {v['paper']})" for k, v in overridden.items()))

        LOG.info("loading %s (%s variant) for task %s", task.dataset, spec.data_variant, task.spec.name)
        dataset = task.load(spec.data_variant, [Path(p) for p in spec.data_roots], spec.max_samples)
        result["dataset"] = {"name": dataset.name, "variant": dataset.variant, "path": str(dataset.path),
                             "split": dataset.split_description, "sizes": dataset.sizes(), "sha256": dataset.sha256}
        if task.spec.task_type == "classification":
            result["dataset"]["class_balance"] = {
                split: int(sum(s.target for s in samples)) for split, samples in dataset.splits.items()}
        result["notes"].extend(dataset.notes)
        LOG.info("splits: %s", dataset.sizes())

        seed_everything(spec.seed)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        adapter_class = manifest.load_entry_point()
        if not (isinstance(adapter_class, type) and issubclass(adapter_class, ModelAdapter)):
            raise TypeError(f"{manifest.path}: entry_point: {manifest.data['entry_point']!r} is not a "
                            "subclass of runner.contract.ModelAdapter")

        peak = None
        if device.type == "cuda":
            peak = (torch.cuda.reset_peak_memory_stats, lambda: torch.cuda.max_memory_allocated() / 2**20)
        telemetry = Telemetry(spec.sampling_interval_s, run_dir / TIMESERIES_FILE, peak_memory=peak)
        result["environment"] = environment.describe(spec.git_sha, str(device), telemetry.probe.names,
                                                     telemetry.probe.driver_version)
        train, val, test = (dataset.splits[name] for name in ("train", "val", "test"))
        history: list[dict[str, Any]] = result["history"]
        epochs = effective.get("epochs")
        last = [time.monotonic()]

        def on_epoch_end(record: EpochRecord) -> None:
            now = time.monotonic()
            entry = {"epoch": int(record.epoch), "train_loss": float(record.train_loss),
                     "val_loss": None if record.val_loss is None else float(record.val_loss),
                     "lr": None if record.lr is None else float(record.lr), "loss_name": record.loss_name,
                     "seconds": round(now - last[0], 3), **{k: float(v) for k, v in record.extra.items()}}
            last[0] = now
            history.append(entry)
            val_text = "" if entry["val_loss"] is None else f" val_loss={entry['val_loss']:.4g}"
            LOG.info("epoch %d%s train_loss=%.4g%s (%s, %.1f s)", entry["epoch"], f"/{epochs}" if epochs else "",
                     entry["train_loss"], val_text, record.loss_name, entry["seconds"])

        if task.spec.task_type == "generation":
            elements = sorted({el for s in train for el in s.structure.composition.elements}, key=lambda e: e.Z)
            spec_for_model = dataclasses.replace(task.spec, max_atoms=max(len(s.structure) for s in train),
                                                 elements=tuple(el.symbol for el in elements))
        else:
            spec_for_model = task.spec
        with telemetry:
            phase = "train"
            with telemetry.phase("train"):
                adapter = adapter_class(spec_for_model, effective, device, spec.seed)
                LOG.info("training %s on %d crystals (%s)", manifest.display_name, len(train), device)
                adapter.fit(train, val, on_epoch_end)
            if task.spec.task_type == "generation":
                phase = "generate"
                n_samples = spec.num_samples or task.num_samples
                with telemetry.phase("generate"):
                    LOG.info("generating %d crystals", n_samples)
                    raw = adapter.generate(n_samples)
            else:
                phase = "predict"
                with telemetry.phase("predict"):
                    blind = [Sample(id=s.id, structure=s.structure, target=None) for s in test]
                    raw = adapter.predict(blind)
        phase = "scoring"
        scorer = driver(task.spec.task_type)
        if task.spec.task_type == "generation":
            generated = _check_generated(raw, n_samples)
            scorer.write_cif(run_dir / GENERATED_CIF, generated)
            LOG.info("scoring %d generated crystals against %d reference crystals", len(generated), len(test))
            result["metrics"], result["metric_details"] = scorer.score(
                generated, [s.structure for s in test], dataset=task.dataset,
                cache_dir=Path(spec.cache_dir) if spec.cache_dir else None, n_jobs=spec.n_jobs)
            write_csv(run_dir / GENERATED_CSV, scorer.generated_rows(generated))
            result["files"].update(generated_cif=GENERATED_CIF, generated_csv=GENERATED_CSV)
        elif task.spec.task_type == "spectra":
            grid = np.asarray(task.spec.grid, dtype=np.float64)
            predictions = _check_predictions(raw, len(test), task.spec.task_type, width=grid.size)
            y_true = np.stack([np.asarray(s.target, dtype=np.float64) for s in test])
            result["metrics"], result["metric_details"] = scorer.score(y_true, predictions, grid)
            write_csv(run_dir / PREDICTIONS_FILE, scorer.prediction_rows([s.id for s in test], y_true, predictions, grid))
            result["files"]["predictions"] = PREDICTIONS_FILE
        else:
            predictions = _check_predictions(raw, len(test), task.spec.task_type)
            y_true = np.asarray([s.target for s in test], dtype=np.float64)
            result["metrics"], result["metric_details"] = scorer.score(y_true, predictions)
            write_csv(run_dir / PREDICTIONS_FILE, scorer.prediction_rows([s.id for s in test], y_true, predictions))
            result["files"]["predictions"] = PREDICTIONS_FILE
        phase = "profiling"
        LOG.info("counting parameters and FLOPs")
        result["model_stats"] = profile_model(adapter, train, spec.probe_batch_size)
        result["status"] = "ok"
    except BaseException as exc:  # a crashing model must still leave a result behind
        result["status"] = "oom" if is_out_of_memory(exc) else "failed"
        LOG.error("run failed during %s: %s: %s", phase, type(exc).__name__, exc)
        result["error"] = {"type": type(exc).__name__, "message": str(exc), "phase": phase,
                           "traceback": traceback.format_exc(), "log_tail": None}
        if isinstance(exc, KeyboardInterrupt):
            result["error"]["message"] = "interrupted (SIGINT)"
        if isinstance(exc, SystemExit):
            result["error"]["type"] = "Terminated"
    finally:
        if telemetry is not None and telemetry.report()["overall"]:
            result["resources"] = telemetry.report()
            result["resources"]["timeseries_file"] = TIMESERIES_FILE
            result["files"]["timeseries"] = TIMESERIES_FILE
        elif telemetry is not None:
            result["resources"]["unavailable"] = telemetry.unavailable
        result["finished_at"] = utc_now()
        write_result(run_dir, result)
    return result


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m runner`` (see the module docstring)."""
    import yaml

    parser = argparse.ArgumentParser(prog="python -m runner", description="Run one mateval benchmark run.")
    parser.add_argument("run_dir", nargs="?", type=Path, help="a directory holding run_spec.json")
    parser.add_argument("--results", type=Path, help="make a new run directory here (no orchestrator)")
    parser.add_argument("--model-dir", help="the model folder (with --results)")
    parser.add_argument("--task", help="task name (with --results)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="subset", choices=("subset", "full"))
    parser.add_argument("--data-root", action="append", default=[], help="dataset directory (repeatable)")
    parser.add_argument("--profile", default="bench", choices=("bench", "paper"))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        type=lambda text: (text.partition("=")[0], yaml.safe_load(text.partition("=")[2])))
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--backend", default="local", choices=("local", "docker", "slurm"))
    return parser


def new_run_dir(args: argparse.Namespace) -> Path:
    """Create ``<results>/<run_id>/`` with its spec (the ``--results`` form).

    Raises:
        SystemExit: ``--model-dir`` or ``--task`` missing.
    """
    if not args.model_dir or not args.task:
        raise SystemExit("python -m runner --results DIR needs --model-dir and --task")
    model = Path(args.model_dir).name
    spec = RunSpec(run_id=new_run_id(model, args.task, args.seed), model=model, model_dir=args.model_dir,
                   task=args.task, seed=args.seed, data_variant=args.data, data_roots=args.data_root,
                   profile=args.profile, overrides=dict(args.set), sampling_interval_s=args.interval,
                   backend=args.backend)
    run_dir = args.results / spec.run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    spec.save(run_dir / SPEC_FILE)
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runner``."""
    args = build_parser().parse_args(argv)
    if (args.run_dir is None) == (args.results is None):
        print("usage: python -m runner RUN_DIR | python -m runner --results DIR --model-dir D --task T", file=sys.stderr)
        return 2
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    run_dir = args.run_dir
    if args.results is not None:
        run_dir = new_run_dir(args)
        handlers.append(logging.FileHandler(run_dir / LOG_FILE))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = execute(run_dir)
    LOG.info("result: status=%s metrics=%s", result["status"], json.dumps(result["metrics"]))
    if args.results is not None:
        LOG.info("run directory: %s", run_dir)
    return 0 if result["status"] == "ok" else 1
