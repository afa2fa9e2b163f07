"""The ``mateval`` command line.

``mateval bench --model matformer``    train, evaluate and score a model on its default tasks
``mateval report``                     render the HTML report of the runs in the results directory
``mateval models``                     list models and tasks
``mateval check-result FILE...``       validate result files against the schema
``mateval export --format matbench``   write the folds of ``--protocol matbench`` runs as Matbench's results.json.gz
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from orchestrator import registry, results
from orchestrator import staging as staging_owner
from orchestrator.backends import get_backend
from runner import numeric
from runner.manifest import ManifestError
from runner.numeric import NumberError
from orchestrator.reader import ResultError, read_result_file, read_runs
from runner.wire import RunSpec
from runner.tasks import TASKS, UnknownTaskError

# a pipe or CI log has no terminal width: use the fallback instead of rich's 80 columns
console = Console(highlight=False, width=shutil.get_terminal_size((150, 40)).columns)
#: metric columns of the terminal summary per task type shown: its first ones in catalogue order
TERMINAL_METRICS_PER_TASK_TYPE = 4


def parse_assignments(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``["epochs=5", "lr=1e-3"]`` -> ``{"epochs": 5, "lr": 0.001}`` (values parsed as YAML).

    Raises:
        SystemExit: an item is not ``key=value`` (argparse-style usage error).
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"mateval: {what}: expected key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def parse_max_samples(text: str | None) -> dict[str, int] | None:
    """``"train=64,val=16,test=64"`` -> dict; ``None`` or ``""`` -> ``None``.

    Raises:
        NumberError: a split other than train|val|test, a split named twice, or a count that is
            not a positive integer (``--max-samples`` named).
    """
    if not text:
        return None
    parsed: dict[str, int] = {}
    for pair in (p for p in text.split(",") if p.strip()):
        split, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or split not in ("train", "val", "test") or split in parsed:
            raise NumberError(f"--max-samples: expected train=N,val=N,test=N (each split at most once), got {text!r}")
        parsed[split] = numeric.COUNT.parse(value, f"--max-samples: {split}")
    return parsed or None


def max_samples_argument(text: str) -> dict[str, int] | None:
    """The argparse ``type=`` of ``--max-samples`` (see :func:`parse_max_samples`)."""
    try:
        return parse_max_samples(text)
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-samples: ")) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mateval``."""
    parser = argparse.ArgumentParser(prog="mateval", description="Benchmark harness for materials-science ML models.")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="train, evaluate and score models")
    bench.add_argument("--model", default=None, help="model name, comma-separated names, or 'all' (or use --grid)")
    bench.add_argument("--grid", default=None, metavar="FILE", help="grid file (YAML) listing models, tasks and "
                       "seeds; runs on every backend (see examples/grid-small.yaml); flags override its fields")
    bench.add_argument("--task", action="append", default=[], help="task name (repeatable); default: the model's default tasks")
    bench.add_argument("--seed", type=numeric.argument(numeric.SEED), action="append", default=[],
                       help="seed, 0 to 2**32-1 (repeatable; default 0)")
    bench.add_argument("--backend", default=None, help="auto (default: Docker when a daemon answers and the base "
                       "image is present, else local) | local | docker | slurm")
    bench.add_argument("--resume", action="store_true", help="skip runs that already have an ok result for the same "
                       "model, task, seed, data checksum and configuration hash")
    bench.add_argument("--base-image", default=None, help="Docker: parent image of images/base (default: "
                       "an official CUDA PyTorch image; without a registry: mateval/local-base:latest)")
    bench.add_argument("--gpus", default="all", help="Docker: 'all', 'none' or GPU indices '0,1'")
    bench.add_argument("--memory", type=numeric.memory_argument, default=None,
                       help="Docker: container memory limit, e.g. 16g")
    bench.add_argument("--cpus", type=numeric.argument(numeric.CPUS), default=None, help="Docker: CPU limit, e.g. 4")
    bench.add_argument("--slurm-config", default=None, metavar="FILE", help="Slurm: settings file (YAML; default "
                       "$MATEVAL_SLURM_CONFIG): partition, time, gpus, cpus, mem, account, container, image, ...")
    bench.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                       help="Slurm: one setting, over the file and the grid (e.g. partition=gpu, time=120, gpus=1)")
    bench.add_argument("--sbatch", action="append", default=[], metavar="OPTION=VALUE",
                       help="Slurm: an extra sbatch option (e.g. constraint=a100)")
    bench.add_argument("--data", default=None, choices=("subset", "full"),
                       help="'subset' (embedded compact real subset, default) or 'full' (needs --data-dir/MATEVAL_DATA)")
    bench.add_argument("--data-dir", default=None, help="directory holding full datasets (default: $MATEVAL_DATA)")
    bench.add_argument("--results-dir", default="results", help="where run directories go (default: results)")
    bench.add_argument("--profile", default=None, choices=("bench", "paper"),
                       help="'bench' (default): model.yaml's bench_hyperparameters (e.g. fewer epochs); 'paper': paper defaults")
    bench.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    bench.add_argument("--protocol", default=None, choices=("task", "matbench"),
                       help="'task' (default): the task's own train/val/test split; 'matbench': Matbench's "
                       "5-fold cross-validation (regression and classification tasks): the task's train+val+test "
                       "rows pooled in that order (or Matbench's own file $MATEVAL_DATA/matbench/<task>.json.gz "
                       "for a task that has one), one run per fold, validation drawn from the fold's training part "
                       "with the seed; the summary shows mean ± std over the folds; see 'mateval export'")
    bench.add_argument("--max-samples", type=max_samples_argument, default=None, metavar="train=N,val=N,test=N",
                       help="keep only the first N samples of a split (smoke runs)")
    bench.add_argument("--interval", type=numeric.argument(numeric.INTERVAL), default=1.0,
                       help="telemetry sampling interval in seconds (0.05 to 3600; default 1)")
    bench.add_argument("--num-samples", type=numeric.argument(numeric.COUNT), default=None,
                       help="generation tasks: crystals to generate (default: the task's, 1000)")
    bench.add_argument("--jobs", type=numeric.argument(numeric.COUNT), default=None,
                       help="processes for scoring fingerprints (default: all cores)")
    bench.add_argument("--timeout", type=numeric.argument(numeric.TIMEOUT), default=None,
                       help="per-run time limit in seconds, > 0 and at most 30 days (default: model.yaml's timeout_s)")
    bench.add_argument("--no-report", action="store_true", help="do not render the HTML report")
    bench.add_argument("--quiet", action="store_true", help="do not echo the runs' logs")

    report = sub.add_parser("report", help="render the HTML report")
    report.add_argument("runs", nargs="*", help="run directories (default: every run in --results-dir)")
    report.add_argument("--results-dir", default="results")
    report.add_argument("-o", "--output", default=None, help="output HTML file (default: <results-dir>/report.html)")

    sub.add_parser("models", help="list models and tasks")

    export = sub.add_parser("export", help="export the folds of --protocol matbench runs in Matbench's "
                            "results.json.gz format (matbench.bench.MatbenchBenchmark)")
    export.add_argument("runs", nargs="*", help="run directories (default: every --protocol matbench run in "
                        "--results-dir; runs of another protocol named here are an error)")
    export.add_argument("--format", required=True, choices=("matbench",), help="the format: matbench")
    export.add_argument("--results-dir", default="results")
    export.add_argument("--model", default=None, help="the model to export when the runs hold several")
    export.add_argument("--seed", type=numeric.argument(numeric.SEED), default=None,
                        help="the seed to export when the runs hold several")
    export.add_argument("-o", "--output", default=None,
                        help="output file (default: <results-dir>/results.json.gz; gzip-compressed JSON)")

    build = sub.add_parser("build", help="build the Docker images of models (base image first)")
    build.add_argument("--model", required=True, help="model name, comma-separated names, or 'all'")
    build.add_argument("--base-image", default=None)

    sub.add_parser("local-base-image", help="build mateval/local-base:latest (debootstrap + torch CPU wheel), "
                   "a stand-in base image for hosts without a registry")

    sub.add_parser("local-slurm", help="start a real one-node Slurm cluster on this machine (root; idempotent)")

    check = sub.add_parser("check-result", help="check results: schema, recorded file sha256, metrics recomputed")
    check.add_argument("files", nargs="+", help="result.json files or run directories")
    check.add_argument("--data-dir", default=None, help="directory holding full datasets (default: $MATEVAL_DATA)")
    check.add_argument("--no-rescore", action="store_true", help="do not recompute the metrics")
    return parser


def _planned(directory: Path) -> tuple[str, str, Any]:
    """``(model, task, seed)`` a run without a readable result was planned with, from its
    ``run_spec.json`` (written by the host before the run; read without following a link, size
    bounded), or ``("?", "?", "?")``."""
    from runner import safefiles
    from runner.wire import SPEC_FILE, RunSpec

    try:
        spec = RunSpec.from_json(safefiles.read_text(Path(directory) / SPEC_FILE, 2**20), SPEC_FILE)
        return spec.model, spec.task, spec.seed
    except (OSError, ValueError, TypeError, RecursionError):
        return "?", "?", "?"


def summary_rows(records) -> list[dict[str, Any]]:
    """Flat rows for the terminal summary (one per :class:`orchestrator.reader.RunRecord`)."""
    from orchestrator.report.grouping import settings_text

    rows = []
    for record in records:
        if not record.ok:
            model, task, seed = _planned(record.directory)
            rows.append({"run_id": record.run_id, "model": model, "task": task, "task_type": "", "seed": seed,
                         "status": "unreadable", "duration (s)": None, "metrics": {}, "error": record.error})
            continue
        result = record.result
        baseline = result.get("baseline") if isinstance(result.get("baseline"), dict) else None
        seed = record.seed if record.fold is None else f"{record.seed} fold {record.fold}"
        rows.append({"run_id": record.run_id, "model": record.display_name, "task": record.task,
                     "task_type": record.task_type, "seed": seed, "status": record.status,
                     "duration (s)": result["resources"]["overall"].get("duration (s)"),
                     "metrics": record.metrics, "error": record.error_message,
                     "baseline": (baseline or {}).get("metrics") if baseline else None,
                     "flags": [f for f in result.get("flags") or [] if isinstance(f, dict)],
                     "settings": settings_text(result)})
    return rows


def terminal_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """The metric columns: for each task type among ``rows``, its first
    :data:`TERMINAL_METRICS_PER_TASK_TYPE` catalogue metrics (shared names share a column)."""
    from metrics import catalogue

    shown: list[str] = []
    for task_type in dict.fromkeys(row["task_type"] for row in rows if row["task_type"]):
        try:
            names = catalogue.names(task_type)[:TERMINAL_METRICS_PER_TASK_TYPE]
        except KeyError:
            names = ()
        shown += [n for n in names if n not in shown]
    return shown


def _directions(rows: list[dict[str, Any]], shown: list[str]) -> str:
    """``"below 1 is better for MAE, RMSE; above 1 for R2"``: how to read the ratios of ``shown``."""
    from orchestrator.report.baseline import better_text

    lower, higher = [], []
    for name in shown:
        text = next((t for row in rows if row["task_type"] and name in (row.get("baseline") or {})
                     and (t := better_text(row["task_type"], name))), "")
        (higher if text.startswith("above") else lower if text else []).append(name)
    parts = ([f"below 1 is better for {', '.join(lower)}"] if lower else []) + \
        ([f"above 1 is better for {', '.join(higher)}"] if higher else [])
    return "; ".join(parts)


def print_summary(rows: list[dict[str, Any]]) -> None:
    """A short table of runs in the terminal: one row per run, under a run with a trivial baseline
    (``result.json``'s ``baseline``) a row with the baseline's values and the ratio model ÷
    baseline; a flagged run (degenerate result) has ``⚠`` beside its status, its flags are printed
    under the table with the errors of the runs that failed. Each row is one run (nothing is
    averaged); when runs of one model and task differ in their settings, a ``settings`` column
    says how, and the settings of each model (profile, data, sample limits, hyperparameters that
    differ from the paper's) are printed under the table."""
    from orchestrator.report.baseline import ratio

    table = Table(title="mateval results", show_lines=False)
    shown = terminal_metrics(rows)
    variants: dict[tuple, set] = {}
    for row in rows:
        variants.setdefault((row["model"], row["task"]), set()).add(row.get("settings") or "")
    with_settings = any(len(v) > 1 for v in variants.values())
    for column in ("model", "task", "seed", "status", "duration (s)", *(["settings"] if with_settings else []), *shown):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = row["status"].upper() if row["status"] != "ok" else "ok"
        values = [row["model"], row["task"], str(row["seed"]), status + (" ⚠ flagged" if row.get("flags") else ""),
                  "" if row["duration (s)"] is None else f"{row['duration (s)']:.1f}"]
        if with_settings:
            values.append(row.get("settings") or "")
        for name in shown:
            value = row["metrics"].get(name)
            values.append("" if value is None else f"{value:.4g}")
        table.add_row(*values)
        if row.get("baseline"):
            cells = ["  ↳ baseline", "", "", "", ""] + ([""] if with_settings else [])
            for name in shown:
                value = row["baseline"].get(name)
                found = ratio(row["metrics"].get(name), value)
                shown_ratio = "" if found is None else f" (ratio {found:.3g})"
                cells.append("" if value is None else f"{value:.4g}{shown_ratio}")
            table.add_row(*cells, style="dim")
    console.print(table)
    for model, text in dict.fromkeys((row["model"], row.get("settings")) for row in rows if row.get("settings")):
        console.print(f"settings of {model}: {text}", markup=False, soft_wrap=True)
    if with_settings:
        console.print("runs of one model and task with other settings are not comparable seeds: compare like with like",
                      markup=False, soft_wrap=True)
    if any(row.get("baseline") for row in rows):
        how = _directions(rows, shown)
        console.print(f"trivial baseline: same test split, same scoring code; ratio = model ÷ baseline"
                      f"{' (' + how + ')' if how else ''}", markup=False, soft_wrap=True)
    for row in rows:
        if row["status"] != "ok" and row.get("error"):
            console.print(f"[red]{row['run_id']}[/red]: {row['error']}", markup=True, soft_wrap=True)
    for row in rows:
        for flag in row.get("flags") or []:
            console.print(f"⚠ flagged {row['run_id']}: {flag.get('code')}: {flag.get('message')}", style="yellow",
                          markup=False, soft_wrap=True)


def render(run_dirs: list[Path], output: Path, title: str) -> Path | None:
    """Render the HTML report; a rendering error is reported, never fatal to the results."""
    from orchestrator.report import render_report

    try:
        return render_report(run_dirs, output, title=title)
    except Exception as exc:  # the results are safe on disk; say what went wrong
        console.print(f"mateval: report could not be rendered: {type(exc).__name__}: {exc}")
        return None


def _slurm_config(args: argparse.Namespace, grid):
    """The Slurm settings: file, then the grid's ``slurm:`` section, then ``--slurm``, then ``--sbatch``."""
    from orchestrator.backends.slurm import load_config

    layers = []
    if grid is not None and grid.slurm:
        layers.append((grid.slurm, f"{grid.path}"))
    layers.append((parse_assignments(args.slurm, "--slurm"), "--slurm"))
    config = load_config(args.slurm_config, layers)
    extra = parse_assignments(args.sbatch, "--sbatch")
    return config.updated({"sbatch": {**config.sbatch, **extra}}, "--sbatch") if extra else config


def _given(*values: Any) -> Any:
    """The first value that is not ``None`` (a flag over the grid's field over the default; a
    number 0 counts as given: the parser rejects such values, never replaces them)."""
    return next((value for value in values if value is not None), None)


def _plan(args: argparse.Namespace):
    """Grid, settings, plan, backend and the data roots of ``mateval bench`` (errors raised as they are)."""
    from orchestrator import plan
    from orchestrator.grid import load_grid

    repeated = sorted({seed for seed in args.seed if args.seed.count(seed) > 1})
    if repeated:
        raise ValueError(f"--seed: repeated seed {', '.join(map(str, repeated))}: each seed at most once")
    grid = load_grid(args.grid) if args.grid else None
    manifests = plan.resolve(grid, args.model)
    plan.check_tasks(grid, args.task)
    settings = plan.Settings(
        data_variant=_given(args.data, grid and grid.data, "subset"),
        profile=_given(args.profile, grid and grid.profile, "bench"),
        overrides=dict(grid.overrides) if grid else {},
        max_samples=_given(args.max_samples, grid and grid.max_samples),
        num_samples=_given(args.num_samples, grid and grid.num_samples),
        timeout_s=_given(args.timeout, grid and grid.timeout_s),
        protocol=_given(args.protocol, grid and grid.protocol, "task"))
    seeds = args.seed or (list(grid.seeds) if grid else [0])
    skipped: list[str] = []
    planned = plan.build(manifests, args.task, seeds, settings, parse_assignments(args.set, "--set"), grid, skipped)
    name = args.backend or (grid.backend if grid else None) or "auto"
    slurm = _slurm_config(args, grid) if name == "slurm" else None
    backend, choice = get_backend(name, args.base_image, args.gpus, args.memory, args.cpus, slurm=slurm,
                                  say=lambda line: console.print(f"mateval: {line}", markup=False, highlight=False))
    return grid, settings, planned, skipped, backend, choice


def cmd_bench(args: argparse.Namespace) -> int:
    """``mateval bench``: run every (model, task, seed) of ``--model`` or ``--grid`` and summarize."""
    from orchestrator import plan
    from orchestrator.backends.slurm import SlurmConfigError
    from orchestrator.grid import GridError

    try:
        grid, settings, planned, skipped, backend, choice = _plan(args)
    except (GridError, SlurmConfigError, ManifestError, UnknownTaskError, ValueError, RuntimeError) as exc:
        console.print(f"mateval: {exc}", markup=False)
        return 2
    console.print(f"mateval: {choice}", markup=False)
    for line in skipped:
        console.print(f"mateval: skipping {line}", markup=False)
    results_root = Path(args.results_dir).resolve()
    results_root.mkdir(parents=True, exist_ok=True)
    owner = staging_owner.StagingOwner(results_root)  # held while this process lives: our entries are not stale
    for line in staging_owner.clean_stale(results_root):
        console.print(f"mateval: {line}", markup=False)
    for line in backend.clean_orphans(results_root, staging_owner.live_claims(results_root)):
        console.print(f"mateval: {line}", markup=False)
    roots = registry.data_roots(args.data_dir)
    kept: list[Path] = []
    if args.resume:
        unreadable: list[tuple[Path, str]] = []
        planned, already = plan.drop_completed(planned, settings, roots, results.run_dirs(results_root), unreadable)
        for directory, reason in unreadable:
            console.print(f"mateval: resume: {directory.name} skipped, its result cannot be read: {reason}",
                          markup=False)
        for item, directory in already:
            fold = "" if item.fold is None else f" fold {item.fold}"
            console.print(f"mateval: resume: {item.manifest.name} on {item.task} seed {item.seed}{fold} already ok in "
                          f"{directory.name}; not run again", markup=False)
        kept = [directory for _, directory in already]
    if not planned:
        console.print("mateval: nothing to run" + (f": all {len(kept)} runs already have an ok result" if kept else ""))
        if not kept:
            return 2
    say = lambda line: console.print(f"mateval: {line}", markup=False, highlight=False)  # noqa: E731
    try:
        backend.setup([item.manifest.folder for item in planned], say)
    except RuntimeError as exc:
        console.print(f"mateval: {exc}", markup=False)
        return 2
    specs = plan.run_specs(planned, settings, plan.RunSettings(
        backend=backend.name, time_limit=backend.time_limit_s, data_roots=tuple(roots),
        sampling_interval_s=args.interval, git_sha=registry.git_sha(), cache_dir=results_root / ".cache",
        n_jobs=args.jobs))
    runs, finished, data_cache = [], [], {}
    for spec in specs:
        owner.claim(spec.run_id)
        staging = results.prepare(results_root, spec)
        try:
            failed = results.stage_inputs(spec, staging, data_cache)
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk while recording the failure: this run only
            results.append_log(staging, f"mateval: the run could not be prepared: {type(exc).__name__}: {exc}")
            failed = {"status": "failed", "error": {"message": f"could not be prepared: {type(exc).__name__}: {exc}"}}
        if failed is None:
            runs.append((spec, staging))
            continue
        try:
            finished.append(results.publish(staging, results_root))
        except OSError as exc:
            console.print(f"mateval: {spec.run_id}: not published, left in {staging}: {exc}", markup=False)
        console.print(f"mateval: {spec.run_id}: status {failed['status']} ({failed['error']['message']})",
                      markup=False)
    if runs:
        console.print(f"mateval: {len(runs)} run(s) on backend {backend.name}", markup=False)
    echo = None if args.quiet else (lambda line: console.print(f"  | {line}", markup=False, highlight=False))

    def announce(index: int, spec: RunSpec):
        console.print(f"[bold]mateval[/bold] [{index}/{len(runs)}] {spec.model} on {spec.task} "
                      f"(seed {spec.seed}, {backend.name}) -> {results_root / spec.run_id}")
        return echo

    collect_s = [0.0]

    collected: set[str] = set()

    def done(spec: RunSpec, staging: Path, outcome) -> dict:
        """Finalize and publish one run; never raises (:func:`orchestrator.results.collect`)."""
        begin = time.monotonic()
        collected.add(spec.run_id)
        result, directory, problem = results.collect(staging, spec, outcome, results_root)
        if directory is not None:
            finished.append(directory)
        console.print(f"mateval: {spec.run_id}: status {result['status']}" + (f" ({problem})" if problem else ""),
                      markup=False)
        collect_s[0] += time.monotonic() - begin
        return result

    interrupted, error = False, None
    setup_s = time.time() - psutil.Process().create_time()  # interpreter start, imports, plan, run directories
    runs_started = time.monotonic()
    try:
        backend.run_all(runs, done, announce)
    except KeyboardInterrupt:
        interrupted = True
        console.print("mateval: interrupted; finished results are kept")
    except (SlurmConfigError, RuntimeError) as exc:
        error = exc
        console.print(f"mateval: {exc}", markup=False)
    finally:
        for spec, staging in runs:  # never started: nothing to keep (a collected run keeps its run.log)
            if spec.run_id not in collected and staging.exists() and not (staging / "result.json").exists():
                shutil.rmtree(staging, ignore_errors=True)
    run_s = time.monotonic() - runs_started - collect_s[0]
    collection_started = time.monotonic()
    shown = kept + finished
    if not shown:
        console.print("mateval: nothing was run")
        return 2
    loaded = read_runs(shown)
    print_summary(summary_rows(loaded))
    for directory in finished:
        console.print(f"result: {directory / 'result.json'}")
    everything = results.run_dirs(results_root)  # the report and the summaries cover the whole directory
    if not args.no_report:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        title = f"mateval bench {grid.name if grid else args.model}"
        report = render(everything, results_root / f"report-{stamp}.html", title)
        if report:
            console.print(f"report: {report} ({len(everything)} runs in {results_root})")
    for path in _write_summaries(read_runs(everything), results_root):
        console.print(f"summary: {path}")
    collect_s[0] += time.monotonic() - collection_started
    console.print(f"mateval: timings: set-up {setup_s:.2f} s, runs {run_s:.2f} s, collection {collect_s[0]:.2f} s "
                  "(finalize, scoring, publish, summary, report)", markup=False)
    if interrupted:
        return 130
    if error is not None:
        return 2
    return 0 if all(record.status == "ok" for record in loaded) else 1


def _write_summaries(loaded, directory: Path) -> tuple[Path, ...]:
    """``summary.md`` and ``summary.csv`` (mean ± std over seeds) in ``directory``; a failure is
    printed, never raised, so it never loses the results."""
    try:
        from orchestrator.report.sections import load_plugins
        from orchestrator.report.summary import write_summaries

        load_plugins()  # catalogue entries of plugin task types
        return tuple(write_summaries(loaded, directory))
    except Exception as exc:
        console.print(f"mateval: summary could not be written: {type(exc).__name__}: {exc}", markup=False)
        return ()


def cmd_report(args: argparse.Namespace) -> int:
    """``mateval report``: render every run (or the given ones) into one HTML file."""
    dirs = [Path(p) for p in args.runs] or results.run_dirs(Path(args.results_dir))
    if not dirs:
        console.print(f"mateval: no runs found in {args.results_dir}")
        return 2
    output = Path(args.output) if args.output else Path(args.results_dir) / "report.html"
    inside = next((p for p in output.resolve().parents if (p / "result.json").exists() or (p / "run_spec.json").exists()),
                  None)
    if inside is not None or output.name in ("result.json", "run_spec.json"):
        console.print(f"mateval: report -o {output}: refusing to write inside the run directory {inside or output.parent}"
                      "; run directories are never written after they are published", markup=False, soft_wrap=True)
        return 2
    output.parent.mkdir(parents=True, exist_ok=True)
    report = render(dirs, output, "mateval report")
    loaded = read_runs(dirs)
    summaries = _write_summaries(loaded, Path(args.results_dir))  # written even when the HTML failed
    if report is None:
        return 1
    print_summary(summary_rows(loaded))
    console.print(f"report: {report}")
    for path in summaries:
        console.print(f"summary: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``mateval export --format matbench``: see :mod:`orchestrator.export_matbench`."""
    from orchestrator.export_matbench import ExportError, export

    explicit = [Path(p) for p in args.runs]
    dirs = explicit or results.run_dirs(Path(args.results_dir))
    output = Path(args.output) if args.output else Path(args.results_dir) / "results.json.gz"
    try:
        path, lines = export(read_runs(dirs), output, explicit=bool(explicit), model=args.model, seed=args.seed,
                             git_sha=registry.git_sha())
    except ExportError as exc:
        console.print(f"mateval: export: {exc}", markup=False, soft_wrap=True)
        return 2
    for line in lines:
        console.print(f"mateval: {line}", markup=False, soft_wrap=True)
    console.print(f"export: {path}", markup=False)
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    """``mateval models``: models with their task types and default tasks; then the task catalogue."""
    table = Table(title="models")
    for column in ("model", "name", "task types", "default tasks", "status"):
        table.add_column(column)
    for name in registry.model_names():
        try:
            manifest = registry.get_model(name)
            table.add_row(manifest.display_name, name, ", ".join(manifest.data["task_types"]),
                          ", ".join(manifest.data["default_tasks"]), "ok")
        except ManifestError as exc:
            table.add_row("?", name, "", "", f"invalid: {exc}")
    console.print(table)
    tasks = Table(title="tasks")
    for column in ("task", "type", "target", "unit", "dataset"):
        tasks.add_column(column)
    for name, task in sorted(TASKS.items()):
        tasks.add_row(name, task.spec.task_type, task.spec.target, task.spec.unit or "-", task.dataset)
    console.print(tasks)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """``mateval build``: build (or find up to date) the base and model images."""
    from orchestrator.backends.docker import DockerUnavailable, docker_client
    from orchestrator.images import DEFAULT_BASE_IMAGE, ImageBuildError, ensure_model_image

    try:
        client = docker_client()
        for manifest in registry.resolve_models(args.model):
            image, base = ensure_model_image(client, manifest.folder, manifest.name,
                                             args.base_image or DEFAULT_BASE_IMAGE, None,
                                             lambda line: console.print(f"  | {line}", markup=False))
            console.print(f"{manifest.name}: {image.tags[0]} ({image.id}); base {base.tags[0]}", markup=False)
    except (DockerUnavailable, ImageBuildError, ManifestError) as exc:
        console.print(f"mateval: {exc}", markup=False)
        return 1
    return 0


def cmd_local_base_image(_: argparse.Namespace) -> int:
    """``mateval local-base-image``: see :mod:`orchestrator.local_base`."""
    from orchestrator.backends.docker import DockerUnavailable, docker_client
    from orchestrator.images import ImageBuildError
    from orchestrator.local_base import LocalBaseError, build_local_base

    try:
        image = build_local_base(docker_client(), None, lambda line: console.print(f"  | {line}", markup=False))
    except (DockerUnavailable, ImageBuildError, LocalBaseError) as exc:
        console.print(f"mateval: {exc}", markup=False)
        return 1
    console.print(f"mateval/local-base:latest = {image.id}", markup=False)
    return 0


def cmd_local_slurm(_: argparse.Namespace) -> int:
    """``mateval local-slurm``: see :mod:`orchestrator.local_slurm`."""
    from orchestrator.local_slurm import LocalSlurmError, ensure_cluster

    try:
        ensure_cluster(lambda line: console.print(f"mateval: {line}", markup=False))
    except LocalSlurmError as exc:
        console.print(f"mateval: {exc}", markup=False)
        return 1
    return 0


def cmd_check_result(args: argparse.Namespace) -> int:
    """``mateval check-result``: each result against the schema, the files against the sha256
    recorded at the run's end, an ``ok`` status against its metrics, and the metrics against a
    recomputation from the run's files by the scoring stage (``--no-rescore`` skips that). Exit 1
    if any check fails."""
    from orchestrator.integrity import problems

    failed = 0
    roots = registry.data_roots(args.data_dir)
    for name in args.files:
        path = Path(name)
        run_dir = path.parent if path.name == "result.json" or path.is_file() else path
        try:
            result = read_result_file(run_dir / "result.json")
            found = problems(run_dir, result)
            if not found and result["status"] == "ok" and not args.no_rescore:
                found = results.rescore(run_dir, roots, run_dir.parent / ".cache")
        except ResultError as exc:
            found = [str(exc)]
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the check of the others
            found = [f"{name}: cannot be read: {type(exc).__name__}: {str(exc)[:500]}"]
        if found:
            failed += 1
            for line in found:
                console.print(line, markup=False, soft_wrap=True)
        else:
            checked = "" if args.no_rescore or result["status"] != "ok" else \
                f"; {len(result['metrics'])} metrics recomputed and identical{_baseline_checked(result)}"
            console.print(f"{name}: ok (schema, files{checked})", markup=False, soft_wrap=True)
    return 1 if failed else 0


def _baseline_checked(result: dict) -> str:
    """``"; so are the baseline's 5 metrics and 2 flags"`` for check-result's line, ``""`` without them."""
    base = result.get("baseline")
    parts = [f"the baseline's {len(base.get('metrics') or {})} metrics"] if base else []
    if "flags" in result:
        parts.append(f"{len(result['flags'])} flag{'' if len(result['flags']) == 1 else 's'}")
    return ("; so are " + " and ".join(parts)) if parts else ""


def _terminate(signum, frame):
    """SIGTERM takes the Ctrl-C path: the running run is stopped, finalized and published."""
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mateval`` console script."""
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    handler = {"bench": cmd_bench, "report": cmd_report, "models": cmd_models, "check-result": cmd_check_result,
               "build": cmd_build, "export": cmd_export, "local-base-image": cmd_local_base_image, "local-slurm": cmd_local_slurm}
    return handler[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
