"""The model stage of a run: train the model and let it predict (or generate), nothing else.

``python -m runner RUN_DIR``: the orchestrator (any backend) has written ``RUN_DIR/run_spec.json``
(:class:`runner.wire.RunSpec`) and the model inputs ``RUN_DIR/inputs/`` (:mod:`runner.inputs`:
train and validation samples with targets, test samples without), and captures this process's
output as ``run.log``. This stage never sees a test target and computes no metric: it writes

- the model's output (the task type's file: ``model_predictions.csv`` or
  ``generated_structures.json``, see :mod:`runner.tasks`);
- ``timeseries.csv`` (resource samples, see :mod:`runner.telemetry`);
- ``model/<model>.model``: the trained model, when the adapter implements
  :meth:`ModelAdapter.save_model` (``files.model`` in ``result.json``);
- ``result.json`` without metrics (always, also when the model raises: ``status`` ``failed`` or
  ``oom``): model, task, hyperparameters, loss history, resources, parameters and FLOPs.

The scoring stage (:mod:`runner.score`, on the host, in mateval's own environment) then reads the
output, scores it against the held-out targets and completes ``result.json``.

``python -m runner --results DIR --model-dir D --task T [--seed N] [--data-root R]...``: a run
without the orchestrator (e.g. a Compose service): prepare, the model stage (a subprocess) and
scoring, one after the other, in a new ``DIR/<run_id>/`` that keeps its own ``run.log``.

Exit status: 0 when the result is ``ok``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runner import environment, numeric
from runner.contract import EpochRecord, ModelAdapter
from runner.result import base_result, utc_now, write_result
from runner.wire import LOG_FILE, SPEC_FILE, TIMESERIES_FILE, RunSpec, new_run_id

LOG = logging.getLogger("mateval.runner")


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


def _epoch_logger(history: list, epochs: Any):
    """The ``on_epoch_end`` callback: keeps each epoch in ``history`` and logs it with the time
    elapsed since training began and, when the number of epochs is known, an estimate of what
    remains (:func:`runner.progress.remaining_s`)."""
    from runner.progress import duration_text, remaining_s

    start = time.monotonic()
    last = [start]

    def on_epoch_end(record: EpochRecord) -> None:
        now = time.monotonic()
        entry = {"epoch": int(record.epoch), "train_loss": float(record.train_loss),
                 "val_loss": None if record.val_loss is None else float(record.val_loss),
                 "lr": None if record.lr is None else float(record.lr), "loss_name": record.loss_name,
                 "seconds": round(now - last[0], 3), **{k: float(v) for k, v in record.extra.items()}}
        # NaN/inf become null in result.json; name them, so the scoring stage can flag them
        non_finite = [k for k in ("train_loss", "val_loss") if entry[k] is not None and not math.isfinite(entry[k])]
        if non_finite:
            entry["non_finite"] = non_finite
        last[0] = now
        history.append(entry)
        val_text = "" if entry["val_loss"] is None else f" val_loss={entry['val_loss']:.4g}"
        total = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else 0
        left = remaining_s(len(history), total, now - start)
        timing = f"{duration_text(now - start)} elapsed" + (
            f", about {duration_text(left)} left" if left is not None and len(history) < total else "")
        LOG.info("epoch %d%s train_loss=%.4g%s (%s, %.1f s; %s)", entry["epoch"], f"/{epochs}" if epochs else "",
                 entry["train_loss"], val_text, record.loss_name, entry["seconds"], timing)

    return on_epoch_end


#: folder of the run directory the trained model is saved in (:meth:`ModelAdapter.save_model`)
MODEL_FOLDER = "model"


def _save_model(adapter: ModelAdapter, run_dir: Path, name: str, notes: list) -> str | None:
    """Let ``adapter`` save its trained model as ``RUN_DIR/model/<name>.model``; returns that path
    relative to ``run_dir``, or ``None`` when the adapter saves nothing or saving failed (then a
    note says why; the run still ends ok: its predictions are written)."""
    if type(adapter).save_model is ModelAdapter.save_model:
        return None
    folder = run_dir / MODEL_FOLDER
    target = folder / f"{name}.model"
    try:
        folder.mkdir(exist_ok=True)
        written = adapter.save_model(target)
        if written is None:
            return None
        written = Path(written)
        if written.resolve().parent != folder.resolve() or written.is_symlink() or not written.is_file():
            raise ValueError(f"save_model returned {str(written)!r}, not a regular file in {folder}")
    except Exception as exc:  # noqa: BLE001 - the predictions are written; the model file is a bonus
        LOG.warning("the trained model was not saved: %s: %s", type(exc).__name__, exc)
        notes.append(f"the trained model was not saved ({type(exc).__name__}: {exc})")
        return None
    LOG.info("trained model saved as %s (%.1f MB)", written.relative_to(run_dir), written.stat().st_size / 1e6)
    return str(written.relative_to(run_dir))


def execute(run_dir: Path) -> dict[str, Any]:
    """Run the model stage of the spec in ``run_dir`` and write its files. Returns the result written."""
    import torch

    from runner.inputs import read_inputs
    from runner.manifest import load_manifest
    from runner.profiling import profile_model
    from runner.tasks import get_task_type, load_plugins
    from runner.telemetry import Telemetry

    run_dir = Path(run_dir)
    spec = RunSpec.load(run_dir / SPEC_FILE)
    result = base_result(spec)
    telemetry = None
    phase = "setup"
    try:
        load_plugins()
        manifest = load_manifest(Path(spec.model_dir))
        result["model"] = {"name": manifest.name, "display_name": manifest.display_name,
                           "entry_point": manifest.data["entry_point"], "paper": manifest.data["paper"],
                           "manifest_sha256": manifest.sha256}
        inputs = read_inputs(run_dir)
        task, task_type = inputs.task, get_task_type(inputs.task_type)
        result["task"] = {"name": task.name, "target": task.target, "unit": task.unit,
                          "positive_class": task.positive_class, "description": inputs.description}
        result["task_type"] = task.task_type
        result["dataset"] = inputs.dataset
        result["notes"].extend(inputs.notes)
        if task.task_type not in manifest.data["task_types"]:
            raise ValueError(f"{manifest.path}: task_types: model {manifest.name!r} does not support "
                             f"{task.task_type!r} (task {task.name!r})")
        effective, overridden = manifest.hyperparameters(spec.profile, spec.overrides)
        result["hyperparameters"] = {"effective": effective, "overridden": overridden, "profile": spec.profile}
        if overridden:
            result["notes"].append("hyperparameters differ from the paper defaults: " + ", ".join(
                f"{k}={v['used']} (paper {v['paper']})" for k, v in overridden.items()))
        train, val, test = (inputs.splits[name] for name in ("train", "val", "test"))
        LOG.info("task %s (%s): splits %s", task.name, task.task_type, {k: len(v) for k, v in inputs.splits.items()})

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
                                                     telemetry.probe.driver_version, spec.model_dir)
        on_epoch_end = _epoch_logger(result["history"], effective.get("epochs"))
        with telemetry:
            phase = "train"
            with telemetry.phase("train"):
                adapter = adapter_class(task, effective, device, spec.seed)
                LOG.info("training %s on %d crystals (%s)", manifest.display_name, len(train), device)
                adapter.fit(train, val, on_epoch_end)
            phase = task_type.phase
            with telemetry.phase(task_type.phase):
                LOG.info("%s: %s on %d test inputs", task_type.phase, task_type.adapter_method, len(test))
                raw = task_type.run_model(adapter, test, task, inputs.settings)
        phase = "output"
        result["files"].update(task_type.write_output(run_dir, raw, test, task, inputs.settings))
        saved = _save_model(adapter, run_dir, manifest.name, result["notes"])
        if saved is not None:
            result["files"]["model"] = saved
        phase = "profiling"
        LOG.info("counting parameters and FLOPs")
        result["model_stats"] = profile_model(adapter, train, spec.probe_batch_size)
        result["status"] = "ok"
        result["scoring"] = {"status": "pending"}
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
    parser.add_argument("--seed", type=numeric.argument(numeric.SEED), default=0)
    parser.add_argument("--data", default="subset", choices=("subset", "full"))
    parser.add_argument("--data-root", action="append", default=[], help="dataset directory (repeatable)")
    parser.add_argument("--profile", default="bench", choices=("bench", "paper"))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        type=lambda text: (text.partition("=")[0], yaml.safe_load(text.partition("=")[2])))
    parser.add_argument("--interval", type=numeric.argument(numeric.INTERVAL), default=1.0)
    parser.add_argument("--backend", default="local", choices=("local", "docker", "slurm"))
    return parser


def new_run_dir(args: argparse.Namespace) -> tuple[Path, RunSpec]:
    """Create ``<results>/<run_id>/`` with the model's view of the spec (the ``--results`` form);
    returns the directory and the full spec.

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
    spec.for_model().save(run_dir / SPEC_FILE)
    return run_dir, spec


def standalone(run_dir: Path, spec: RunSpec) -> dict[str, Any]:
    """The three stages without the orchestrator: prepare here, the model stage in a subprocess
    (its output copied to this log), scoring here. Returns the final result."""
    from runner.prepare import prepare
    from runner.score import record_failure, score_run

    try:
        prepare(spec, run_dir)
    except Exception as exc:  # noqa: BLE001 - a bad dataset is recorded as the run's failure
        LOG.error("prepare failed: %s: %s", type(exc).__name__, exc)
        return record_failure(spec, run_dir, exc, phase="prepare")
    process = subprocess.Popen([sys.executable, "-m", "runner", str(run_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in process.stdout:
        sys.stdout.write(line)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.stream.write(line)
                handler.flush()
    process.wait()
    return score_run(spec, run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runner``."""
    args = build_parser().parse_args(argv)
    if (args.run_dir is None) == (args.results is None):
        print("usage: python -m runner RUN_DIR | python -m runner --results DIR --model-dir D --task T", file=sys.stderr)
        return 2
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if args.results is not None:
        run_dir, spec = new_run_dir(args)
        handlers.append(logging.FileHandler(run_dir / LOG_FILE))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.results is None:
        result = execute(args.run_dir)
        LOG.info("model stage: status=%s", result["status"])
        return 0 if result["status"] == "ok" else 1
    result = standalone(run_dir, spec)
    LOG.info("result: status=%s metrics=%s", result["status"], json.dumps(result["metrics"]))
    LOG.info("run directory: %s", run_dir)
    return 0 if result["status"] == "ok" else 1
