"""A readable run as the report shows it: :func:`describe` turns a :class:`RunRecord` into a
:class:`RunView` (the generic parts here; the task type's figures and details from its section)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from orchestrator.reader import RunRecord

from . import baseline as baseline_view
from .sections import section_for
from .figures import loss_figure, run_file, timeseries_figure
from .formatting import (STATUS_CLASSES, as_dict, as_list, dig, format_count, format_flops, is_num,
                         metric_presentation, short_json)
from .resources import RESOURCE_ROWS, gpu_combined
from .tables import gpu_summary
from .views import RunView

__all__ = ["describe"]

_LOG_TAIL_LINES = 60


def describe(record: RunRecord, index: int) -> RunView:
    """The :class:`RunView` of a readable run (``record.ok``): metadata, dataset, hyperparameters,
    environment, model statistics, resources per phase, the error, and the figures and details of
    its task type's report section (:func:`orchestrator.report.sections.section_for`)."""
    run_dir, result = record.directory, record.result
    model = as_dict(result.get("model"))
    task = as_dict(result.get("task"))
    status = str(result.get("status") or "unknown")
    status_class = STATUS_CLASSES.get(status, "unknown")
    run_id = str(result.get("run_id") or run_dir.name)
    unit = task.get("unit") if isinstance(task.get("unit"), str) else None
    run = RunView(
        index=index,
        anchor=f"run-{index}",
        path=str(run_dir),
        record=record,
        result=result,
        run_id=run_id,
        display_name=str(model.get("display_name") or model.get("name") or run_id),
        model_name=str(model.get("name") or ""),
        task_name=str(task.get("name") or ""),
        task_type=str(result.get("task_type") or ""),
        unit=unit,
        status=status,
        status_label=status.upper(),
        status_class=status_class,
    )
    run.error = _normalise_error(result.get("error"))
    run.flags = baseline_view.flags(result)
    run.baseline = _baseline(run)
    run.notes = [str(n) for n in as_list(result.get("notes"))]

    # --- metadata -------------------------------------------------------------------------
    meta = [("Run id", run_id), ("Directory", str(run_dir)),
            ("Model", f"{run.display_name} ({run.model_name})" if run.model_name else run.display_name)]
    if model.get("entry_point"):
        meta.append(("Entry point", str(model["entry_point"])))
    paper = model.get("paper")
    if isinstance(paper, Mapping) and paper:
        meta.append(("Paper", " · ".join(f"{k}: {short_json(v)}" for k, v in paper.items())))
    task_txt = run.task_name
    if task.get("target"):
        task_txt += f" — target {task['target']}"
    if unit:
        task_txt += f" [{unit}]"
    if run.task_type:
        task_txt += f" ({run.task_type})"
    meta.append(("Task", task_txt))
    if task.get("positive_class"):
        meta.append(("Positive class", str(task["positive_class"])))
    for label, key in (("Seed", "seed"), ("Backend", "backend"), ("Started", "started_at"),
                       ("Finished", "finished_at")):
        if result.get(key) is not None:
            meta.append((label, short_json(result[key])))
    interval = dig(result, "resources", "sampling_interval_s")
    if is_num(interval):
        meta.append(("Telemetry interval", f"{interval:g} s"))
    run.meta = meta

    dataset = as_dict(result.get("dataset"))
    ds = []
    for label, key in (("Name", "name"), ("Variant", "variant"), ("Split", "split"), ("Path", "path")):
        if dataset.get(key) not in (None, ""):
            ds.append((label, short_json(dataset[key])))
    sizes = as_dict(dataset.get("sizes"))
    if sizes:
        ds.append(("Sizes", ", ".join(f"{k} {v:,}" if is_num(v) else f"{k} {v}" for k, v in sizes.items())))
    if dataset.get("class_balance"):
        ds.append(("Class balance", short_json(dataset["class_balance"])))
    sha = as_dict(dataset.get("sha256"))
    if sha:
        ds.append(("SHA-256", ", ".join(f"{k} {str(v)[:12]}…" for k, v in sha.items())))
    run.dataset = ds

    hp = as_dict(result.get("hyperparameters"))
    effective = as_dict(hp.get("effective"))
    overridden = as_dict(hp.get("overridden"))
    run.hyper_profile = str(hp["profile"]) if hp.get("profile") else None
    rows = []
    for name, value in effective.items():
        ov = overridden.get(name)
        paper_val = None
        if isinstance(ov, Mapping) and "paper" in ov:
            paper_val = short_json(ov.get("paper"))
        elif ov is not None:
            paper_val = short_json(ov)
        rows.append((str(name), short_json(value), paper_val))
    for name, ov in overridden.items():  # overrides of names missing from effective
        if name not in effective:
            used = ov.get("used") if isinstance(ov, Mapping) else None
            paper_val = ov.get("paper") if isinstance(ov, Mapping) else ov
            rows.append((str(name), short_json(used), short_json(paper_val)))
    run.hyperparameters = rows

    env = as_dict(result.get("environment"))
    envrows = []
    for label, key in (("Python", "python"), ("Platform", "platform"), ("CPU", "cpu"),
                       ("CPU cores", "cpu_count"), ("Torch device", "torch_device"),
                       ("GPU driver", "gpu_driver"), ("Host", "hostname"),
                       ("mateval commit", "mateval_git_sha")):
        if env.get(key) not in (None, ""):
            envrows.append((label, short_json(env[key])))
    gpus = as_list(env.get("gpus"))
    if gpus:
        envrows.insert(5, ("GPUs", "; ".join(gpu_summary(g) for g in gpus)))
    run.environment = envrows
    run.packages = [(str(k), "n/a" if v is None else str(v)) for k, v in as_dict(env.get("packages")).items()]

    # --- model statistics -----------------------------------------------------------------
    ms = as_dict(result.get("model_stats"))
    stats = []
    if is_num(ms.get("params")):
        stats.append(("Parameters", f"{format_count(ms['params'])} ({ms['params']:,})"))
    if is_num(ms.get("trainable_params")):
        stats.append(("Trainable parameters", f"{format_count(ms['trainable_params'])} ({ms['trainable_params']:,})"))
    flops = as_dict(ms.get("flops"))
    for label, key in (("Forward FLOPs / sample", "forward_per_sample"),
                       ("Forward FLOPs / epoch", "forward_per_epoch"),
                       ("Training FLOPs / epoch", "train_per_epoch")):
        if is_num(flops.get(key)):
            stats.append((label, format_flops(flops[key])))
    for label, key in (("FLOP counting method", "method"), ("Probe batch size", "probe_batch_size"),
                       ("FLOP counting error", "error")):
        if flops.get(key) not in (None, ""):
            stats.append((label, short_json(flops[key])))
    thop = as_dict(ms.get("thop"))
    if is_num(thop.get("macs_per_sample")):
        stats.append(("thop MACs / sample", format_count(thop["macs_per_sample"]) + "MAC"))
    if thop.get("note"):
        stats.append(("thop note", short_json(thop["note"])))
    if thop.get("error"):
        stats.append(("thop error", short_json(thop["error"])))
    comparison = as_dict(thop.get("comparison"))
    if comparison.get("explanation"):
        stats.append(("thop vs FLOPs", short_json(comparison["explanation"], 1000)))
    if ms.get("error"):
        stats.append(("Counting error", short_json(ms["error"])))
    run.model_stats = stats

    # --- resources per phase --------------------------------------------------------------
    overall = as_dict(dig(result, "resources", "overall"))
    phases = {str(k): as_dict(v) for k, v in as_dict(dig(result, "resources", "phases")).items()}
    columns = [("overall", overall)] + list(phases.items())
    prow = []
    for label, key, family, agg, fmt in RESOURCE_ROWS:
        cells = []
        for _, block in columns:
            v = gpu_combined(block, key, agg)[0] if family == "gpu" else block.get(key)
            cells.append(fmt(v) if is_num(v) else "—")
        if any(c != "—" for c in cells):
            prow.append((label, cells))
    if prow:
        run.phase_table = {"columns": [c for c, _ in columns], "rows": prow}
    by_reason: dict[str, list[str]] = {}
    for e in as_list(dig(result, "resources", "unavailable")):
        if isinstance(e, Mapping):
            by_reason.setdefault(str(e.get("reason") or "unavailable"), []).append(str(e.get("metric") or "?"))
    run.unavailable = [(reason, metrics) for reason, metrics in by_reason.items()]

    # --- error ----------------------------------------------------------------------------
    if run.status != "ok" and (run.error is None or not run.error["log_tail"]):
        tail = _log_tail(run_file(run_dir, result, "log", "run.log"))
        if tail:
            run.error = run.error or _normalise_error({})
            run.error.update(log_tail=tail, log_tail_from_file=True)

    # --- the task type's section -----------------------------------------------------------
    section = section_for(run.task_type)
    common = [timeseries_figure(run, section.phases), loss_figure(run)]
    run.figures = section.layout(common, section.figures(run))
    section.details(run)
    return run


def _normalise_error(err: Any) -> dict | None:
    """The ``error`` block with every key the template reads (strings or ``None``)."""
    if err is None:
        return None
    if not isinstance(err, Mapping):
        err = {"type": "error", "message": short_json(err, 2000)}

    def text(key: str) -> str | None:
        v = err.get(key)
        return None if v is None or v == "" else (v if isinstance(v, str) else short_json(v, 20000))

    return {"type": text("type"), "message": text("message") or "", "phase": text("phase"),
            "traceback": text("traceback"), "log_tail": text("log_tail"), "log_tail_from_file": False}


def _baseline(run: RunView) -> dict[str, Any] | None:
    """What the run's section shows of its trivial baseline: ``predictor``, ``error`` and ``rows``
    ``(label, model value, baseline value, ratio text, ratio title)`` per metric, formatted as in the
    comparison; ``None`` without a baseline."""
    block = run.result.get("baseline")
    if not isinstance(block, Mapping):
        return None
    metrics, base = as_dict(run.result.get("metrics")), as_dict(block.get("metrics"))
    rows = []
    for name in [*metrics, *(n for n in base if n not in metrics)]:
        label, _, fmt = metric_presentation(run.task_type, name, run.unit)
        model, value = metrics.get(name), base.get(name)
        found = baseline_view.ratio(model, value)
        better = baseline_view.better_text(run.task_type, name)
        if found is None:
            ratio_text, ratio_title = "—", "no ratio: " + baseline_view.ratio_reason(model, value)
        else:
            ratio_text, ratio_title = f"{found:.3g}", f"{found!r}" + (f" ({better})" if better else "")
        rows.append((label, fmt(model) if is_num(model) else "n/a", fmt(value) if is_num(value) else "n/a",
                     ratio_text + (f" ({better})" if better and found is not None else ""), ratio_title))
    return {"predictor": str(block.get("predictor") or ""), "error": block.get("error"), "rows": rows}


def _log_tail(path: Path) -> str | None:
    """The last lines of the run's log, read from the end and never through a symbolic link (a
    refused log gives the reason instead, e.g. ``"run.log is a symbolic link; not read"``)."""
    from runner import safefiles

    try:
        lines = safefiles.read_tail(path, root=path.parent).splitlines()[-_LOG_TAIL_LINES:]
    except safefiles.RefusedFile as exc:
        return f"{exc.name} {exc.reason}; not read"
    except OSError:
        return None
    return "\n".join(lines).rstrip() or None
