"""The runs table (one row per run: model, task, seed, status, duration, main metric) and the
environment table (image, Slurm job, versions and hardware of every run)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from metrics import catalogue

from .formatting import as_dict, dig, format_count, format_fixed, is_num, metric_presentation, short_json
from .resources import resource_value
from .views import Cell, RunView, missing_cell

__all__ = ["RUNS_COLUMNS", "ENVIRONMENT_COLUMNS", "main_metric", "runs_table", "environment_table", "gpu_summary"]


def gpu_summary(g: Any) -> str:
    if isinstance(g, Mapping):
        name = g.get("name") or g.get("model") or "GPU"
        mem = g.get("memory_total_mib") or g.get("memory_mib") or g.get("memory_total")
        idx = g.get("index")
        s = f"{idx}: {name}" if idx is not None else str(name)
        if is_num(mem):
            s += f" ({format_count(mem)}iB)" if mem >= 1024 else f" ({mem} MiB)"
        elif mem:
            s += f" ({mem})"
        return s
    return short_json(g)


def _text_cell(v: Any, css: str = "", title: str | None = None) -> Cell:
    if v is None or (isinstance(v, str) and not v.strip()) or v in ([], {}):
        return missing_cell()
    return Cell(short_json(v), title, css)


def _num_cell(v: Any, fmt: Callable[[float], str] | None = None, title: str | None = None) -> Cell:
    if not is_num(v):
        return missing_cell() if v is None else Cell(short_json(v), title)
    if fmt is None:
        return Cell(f"{int(v):d}" if float(v).is_integer() else f"{v:g}", title, "num", sort=repr(v))
    return Cell(fmt(v), title or repr(v), "num", sort=repr(v))


def _status_text_cell(run: RunView) -> Cell:
    err = run.error or {}
    title = None
    if err.get("type") or err.get("message"):
        title = f"{err.get('type') or 'error'}: {str(err.get('message') or '')[:200]}"
    if run.flags:  # a degenerate result: marked beside its status, the flags on hover
        flagged = "; ".join(f"{f['code']}: {f['message']}" for f in run.flags)
        return Cell(f"{run.status_label} ⚠", f"flagged: {flagged}" + (f"; {title}" if title else ""),
                    f"status-cell st-{run.status_class} flagged")
    return Cell(run.status_label, title, f"status-cell st-{run.status_class}")


def main_metric(result: Mapping) -> tuple[str | None, Any]:
    """``(metric key, value)`` of the run's main metric (the catalogue's, see
    :func:`metrics.catalogue.main_metric`), else its first numeric metric, else ``(None, None)``.
    The value is returned as stored (it may be ``None``)."""
    metrics = as_dict(result.get("metrics"))
    try:
        name = catalogue.main_metric(str(result.get("task_type") or ""))
    except KeyError:  # a task type without catalogue entries
        name = None
    if name is not None:
        return name, metrics.get(name)
    for k, v in metrics.items():
        if is_num(v):
            return str(k), v
    return None, None


def _main_metrics_text() -> str:
    """``"MAE for regression and spectra, ROC-AUC for classification, validity for generation"``."""
    by_metric: dict[str, list[str]] = {}
    for task_type in catalogue.task_types():
        by_metric.setdefault(catalogue.main_metric(task_type), []).append(task_type)
    return ", ".join(f"{name} for {' and '.join(types)}" for name, types in by_metric.items())


#: (column heading, tooltip) of the runs table
RUNS_COLUMNS = (
    ("#", "order of the runs in the report"), ("Run id", None), ("Model", None), ("Task", None),
    ("Seed", None), ("Status", None), ("Duration (s)", "wall-clock duration of the whole run"),
    ("Main metric", _main_metrics_text()),
    ("Value", "the main metric on the test set"),
)


def runs_table(runs: Sequence[RunView]) -> list[list[Cell]]:
    """One row of cells per run, in the columns of :data:`RUNS_COLUMNS`."""
    rows = []
    for r in runs:
        duration, _ = resource_value(r.result, "duration (s)", "time", "")
        name, value = main_metric(r.result)
        if name is None:
            label_cell, value_cell = missing_cell(": no metric"), (
                _status_text_cell(r) if r.status != "ok" else missing_cell(": no metric"))
        else:
            label, _, fmt = metric_presentation(r.task_type, name, r.unit)
            label_cell = Cell(label)
            if is_num(value):
                value_cell = Cell(fmt(value), repr(value), "num", sort=repr(value))
            elif r.status != "ok":
                value_cell = _status_text_cell(r)
            elif name in as_dict(r.result.get("metrics")):
                value_cell = Cell("n/a", f"{label} could not be computed for this run (stored as null)", "na")
            else:
                value_cell = missing_cell()
        rows.append([
            Cell(str(r.index), None, "num", sort=str(r.index), href=f"#{r.anchor}"),
            Cell(r.run_id, None, "mono", href=f"#{r.anchor}"),
            Cell(r.display_name),
            _text_cell(r.task_name),
            _num_cell(r.result.get("seed")),
            _status_text_cell(r),
            _num_cell(duration, format_fixed(1)),
            label_cell,
            value_cell,
        ])
    return rows


#: (column heading, tooltip) of the environment table
ENVIRONMENT_COLUMNS = (
    ("Run id", None), ("Model", None), ("Task", None), ("Seed", None), ("Status", None), ("Backend", None),
    ("Image", "container image (Docker tag, or the Slurm job's image)"),
    ("Image id", "Docker image id (sha256); hover for the full id"),
    ("Slurm job", "Slurm job id and node; hover for partition, state and queue wait"),
    ("mateval commit", None), ("Python", None), ("torch", "torch version (its +cuXXX suffix is the CUDA build)"),
    ("torch_geometric", None), ("Device", "torch device of the run"), ("GPUs", None), ("GPU driver", None),
    ("CPU", "host CPU model"), ("CPU cores", "logical CPUs of the host (os.cpu_count)"), ("Host", None),
    ("Platform", None),
)


def _image_cells(result: Mapping) -> tuple[Cell, Cell]:
    container = as_dict(result.get("container"))
    slurm = as_dict(result.get("slurm"))
    backend = result.get("backend")
    image = container.get("image") or slurm.get("image")
    extra = []
    for label, key in (("base image", "base_image"), ("Docker", "docker_version"), ("memory limit", "memory_limit"),
                       ("CPUs", "cpus"), ("GPUs", "gpus")):
        if container.get(key) not in (None, ""):
            extra.append(f"{label}: {short_json(container[key])}")
    if slurm.get("container") not in (None, ""):
        extra.append(f"started with: {short_json(slurm['container'])}")
    if image:
        image_cell = Cell(short_json(image), " · ".join(extra) or None, "mono")
    elif backend == "local":
        image_cell = missing_cell(" (local backend: no container image)")
    else:
        image_cell = missing_cell()
    image_id = container.get("image_id")
    if isinstance(image_id, str) and image_id:
        short = image_id if len(image_id) <= 19 else image_id[:19] + "…"
        id_cell = Cell(short, image_id, "mono")
    else:
        id_cell = missing_cell(" (local backend: no container image)" if backend == "local" and not image else "")
    return image_cell, id_cell


def _slurm_cell(result: Mapping) -> Cell:
    slurm = as_dict(result.get("slurm"))
    job, node = slurm.get("job_id"), slurm.get("node")
    if job in (None, "") and node in (None, ""):
        return missing_cell(" (not a Slurm run)" if result.get("backend") not in (None, "slurm") else "")
    text = short_json(job) if job not in (None, "") else "?"
    if node not in (None, ""):
        text += f" on {short_json(node)}"
    details = [f"{label}: {short_json(slurm[key])}" for label, key in
               (("state", "state"), ("partition", "partition"), ("account", "account"),
                ("time limit (min)", "time_limit_min"), ("queue wait (s)", "queue_wait_s"),
                ("exit code", "exit_code"), ("submitted", "submitted_at")) if slurm.get(key) not in (None, "")]
    return Cell(text, " · ".join(details) or None, "mono")


def _gpus_cell(env: Mapping) -> Cell:
    gpus = env.get("gpus")
    if isinstance(gpus, list) and gpus:
        return Cell("; ".join(gpu_summary(g) for g in gpus))
    if isinstance(gpus, list):
        return Cell("none", "no GPU visible to the run")
    return _text_cell(gpus)


def environment_table(runs: Sequence[RunView]) -> list[list[Cell]]:
    """One row of cells per run, in the columns of :data:`ENVIRONMENT_COLUMNS`."""
    rows = []
    for r in runs:
        env = as_dict(r.result.get("environment"))
        packages = as_dict(env.get("packages"))
        image_cell, id_cell = _image_cells(r.result)
        driver = env.get("gpu_driver") or dig(r.result, "container", "gpu_driver")
        no_gpu = env.get("gpus") == [] and not driver
        sha = env.get("mateval_git_sha")
        long_sha = isinstance(sha, str) and len(sha) > 12
        rows.append([
            Cell(r.run_id, None, "mono", href=f"#{r.anchor}"),
            Cell(r.display_name),
            _text_cell(r.task_name),
            _num_cell(r.result.get("seed")),
            _status_text_cell(r),
            _text_cell(r.result.get("backend")),
            image_cell,
            id_cell,
            _slurm_cell(r.result),
            _text_cell(sha[:12] if long_sha else sha, "mono", sha if long_sha else None),
            _text_cell(env.get("python")),
            _text_cell(packages.get("torch")),
            _text_cell(packages.get("torch_geometric")),
            _text_cell(env.get("torch_device"), "mono"),
            _gpus_cell(env),
            missing_cell(" (no GPU visible to the run)") if no_gpu else _text_cell(driver),
            _text_cell(env.get("cpu")),
            _num_cell(env.get("cpu_count")),
            _text_cell(env.get("hostname"), "mono"),
            _text_cell(env.get("platform")),
        ])
    return rows
