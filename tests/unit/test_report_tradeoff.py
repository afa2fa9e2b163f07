"""The accuracy-against-cost figures the report opens with (orchestrator/report/tradeoff.py): the
Pareto front by hand, each model's marker (mean ± std over its ok runs) and label, the baseline
line, the panels that are drawn (GPU energy only when recorded), the note of a task without cost,
escaping of names, and the figure's place at the top of the report, before any table."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.reader import RunRecord  # noqa: E402
from orchestrator.report import render_report  # noqa: E402
from orchestrator.report.formatting import format_metric  # noqa: E402
from orchestrator.report.tradeoff import NO_COST_NOTE, pareto_front, task_tradeoffs  # noqa: E402
from tests.fakes import make_fake_run, validate_result  # noqa: E402

# ----------------------------------------------------------------------------------------------
# pareto_front
# ----------------------------------------------------------------------------------------------


def test_pareto_front_lower_is_better_by_hand() -> None:
    points = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.45), (4.0, 0.2), (4.0, 0.1), (0.5, 0.9), (2.0, 0.4)]
    # by cost: 0.5 -> 0.9 (front), 1 -> 0.5 (front), 2 -> 0.4 (front; the identical later point is
    # not), 3 -> 0.45 (worse than 0.4 for less), 4 -> 0.1 (front; 0.2 at the same cost is not)
    assert pareto_front(points, lower_is_better=True) == [5, 0, 1, 4]


def test_pareto_front_higher_is_better_by_hand() -> None:
    points = [(1.0, 0.6), (2.0, 0.8), (3.0, 0.7), (5.0, 0.9), (0.1, 0.55)]
    assert pareto_front(points, lower_is_better=False) == [4, 0, 1, 3]
    # the same points read as lower-is-better: only the cheapest (0.55 is the lowest metric too)
    assert pareto_front(points, lower_is_better=True) == [4]
    # one point that is cheapest and best dominates every other
    assert pareto_front([(3.0, 1.0), (1.0, 5.0), (2.0, 2.0)], lower_is_better=False) == [1]


def test_pareto_front_edge_cases() -> None:
    assert pareto_front([], lower_is_better=True) == []
    assert pareto_front([(7.0, 1.0)], lower_is_better=True) == [0]
    with pytest.raises(ValueError, match="point 1"):
        pareto_front([(1.0, 1.0), (float("nan"), 0.5)], lower_is_better=True)
    with pytest.raises(ValueError, match="point 0"):
        pareto_front([(1.0, None)], lower_is_better=True)


# ----------------------------------------------------------------------------------------------
# result dicts built here: the numbers of every marker are known
# ----------------------------------------------------------------------------------------------


def result(model: str, seed: int, mae: float | None, *, time: float | None = 100.0, params: int | None = 1000,
           flops: float | None = 1e6, energy: float | None = None, baseline: float | None = 0.8,
           status: str = "ok", task: str = "perov5_heat_ref", display: str | None = None) -> dict:
    """A result with only what the figure reads (the figure's own logic is under test)."""
    train = {} if time is None else {"duration (s)": time}
    if energy is not None:
        train["gpu:0/energy (J)"] = energy
    return {
        "run_id": f"{model}-{task}-{seed}", "status": status, "seed": seed, "task_type": "regression",
        "model": {"name": model, "display_name": display or model.upper()},
        "task": {"name": task, "unit": "eV/atom"},
        "metrics": {} if mae is None else {"MAE": mae, "R2": 0.9},
        "resources": {"overall": {"duration (s)": 999.0}, "phases": {"train": train} if train else {}},
        "model_stats": {"params": params, "flops": None if flops is None else {"forward_per_sample": flops}},
        "baseline": None if baseline is None else {"predictor": "the training mean",
                                                   "metrics": {"MAE": baseline, "R2": 0.0}},
    }


def three_models() -> list[dict]:
    return [
        result("alpha", 0, 0.50, time=100.0, params=10_000, flops=2e6, baseline=0.80),
        result("alpha", 1, 0.54, time=120.0, params=10_000, flops=2e6, baseline=0.84),
        result("beta", 0, 0.30, time=400.0, params=1_000_000, flops=5e8, baseline=0.82),
        result("gamma", 0, 0.35, time=900.0, params=100_000_000, flops=1e9, baseline=0.82),
        result("gamma", 1, None, status="failed", time=5.0),  # not ok: no marker, no cost
    ]


def _label_positions(svg: str, labels: list[str]) -> dict[str, list[tuple[float, float]]]:
    """``{label: [(x, y) of each <text> with exactly that text, in document (panel) order]}``."""
    found: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for m in re.finditer(r'<text [^>]*?x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)</text>', svg):
        if m.group(3) in found:
            found[m.group(3)].append((float(m.group(1)), float(m.group(2))))
    return found


def test_one_marker_per_model_with_mean_and_std_over_ok_runs() -> None:
    (t,) = task_tradeoffs(three_models())
    assert (t.task, t.metric, t.metric_label, t.direction) == ("perov5_heat_ref", "MAE", "MAE (eV/atom)", "lower")
    by = {p.model: p for p in t.points}
    assert list(by) == ["alpha", "beta", "gamma"]
    assert [p.label for p in t.points] == ["ALPHA", "BETA", "GAMMA"]
    alpha, beta, gamma = by["alpha"], by["beta"], by["gamma"]
    assert alpha.n == 2 and alpha.metric == pytest.approx(0.52)
    assert alpha.metric_std == pytest.approx(statistics.stdev([0.50, 0.54]))  # sample std, n - 1
    assert alpha.costs["time"] == pytest.approx(110.0)
    assert alpha.cost_std["time"] == pytest.approx(statistics.stdev([100.0, 120.0]))
    assert gamma.n == 1 and gamma.metric_std is None and gamma.costs["time"] == 900.0  # the failed run is left out
    assert beta.costs == {"time": 400.0, "params": 1_000_000, "flops": 5e8}
    # the baseline: the mean over the runs whose markers are drawn
    assert t.baseline == pytest.approx(statistics.fmean([0.80, 0.84, 0.82, 0.82]))
    assert t.baseline_predictor == "the training mean"


def test_panels_fronts_and_log_axes() -> None:
    (t,) = task_tradeoffs(three_models())
    panels = {p.axis.key: p for p in t.panels}
    assert list(panels) == ["time", "params", "flops"]  # no energy recorded: no energy panel
    # time 110 / 400 / 900 with MAE 0.52 / 0.30 / 0.35: gamma costs more and is worse than beta
    assert panels["time"].front == ["ALPHA", "BETA"]
    assert panels["params"].front == ["ALPHA", "BETA"]
    assert not panels["time"].log_x  # 110 .. 900: under two decades
    assert panels["params"].log_x and panels["flops"].log_x  # 1e4 .. 1e8, 2e6 .. 1e9
    assert all(p.missing == [] for p in t.panels)
    assert "Pareto front by training time: ALPHA, BETA." in t.description


def test_marker_labels_sit_at_their_costs_in_the_svg() -> None:
    (t,) = task_tradeoffs(three_models())
    pos = _label_positions(t.svg, ["ALPHA", "BETA", "GAMMA"])
    assert all(len(v) == 3 for v in pos.values()), pos  # one label per model in each of the 3 panels
    # time panel (linear axis): the labels' x are an affine function of the mean training time
    xa, xb, xg = (pos[k][0][0] for k in ("ALPHA", "BETA", "GAMMA"))
    assert xa < xb < xg
    assert (xb - xa) / (xg - xa) == pytest.approx((400 - 110) / (900 - 110), abs=0.01)
    # parameter panel (log axis): affine in log10(params), 4 -> 6 -> 8: evenly spaced
    xa, xb, xg = (pos[k][1][0] for k in ("ALPHA", "BETA", "GAMMA"))
    assert (xb - xa) / (xg - xa) == pytest.approx(0.5, abs=0.01)
    # alpha (MAE 0.52) and gamma (0.35) share a label offset (first and third by cost); the metric
    # axis is not inverted, so the larger MAE is higher on the page (smaller SVG y)
    assert pos["ALPHA"][0][1] < pos["GAMMA"][0][1]


def test_baseline_line_and_labels_drawn() -> None:
    (t,) = task_tradeoffs(three_models())
    svg = t.svg
    assert svg.count("stroke: #b3261e") == 3 + 1  # one dashed baseline line per panel, and its legend entry
    assert "stroke-dasharray" in svg and ">trivial baseline</text>" in svg and ">Pareto front</text>" in svg
    assert "lower is better" in svg  # the metric axis says which way is better
    assert re.match(r'<svg role="img" aria-labelledby="tradeoff-1-title tradeoff-1-desc"', svg)
    assert '<title id="tradeoff-1-title">perov5_heat_ref: MAE (eV/atom) (lower is better) against cost</title>' in svg
    assert "Trivial baseline: 0.8200." in t.description and '<desc id="tradeoff-1-desc">' in svg


def test_no_baseline_no_line() -> None:
    (t,) = task_tradeoffs([result("a", 0, 0.5, baseline=None), result("b", 0, 0.4, time=300.0, baseline=None)])
    assert t.baseline is None and "#b3261e" not in t.svg and "Trivial baseline" not in t.description


def test_gpu_energy_panel_only_when_recorded() -> None:
    runs = [result("a", 0, 0.5, energy=None), result("b", 0, 0.4, time=300.0)]
    (t,) = task_tradeoffs(runs)
    assert [p.axis.key for p in t.panels] == ["time", "params", "flops"]
    assert "GPU energy" not in t.svg
    runs[1] = result("b", 0, 0.4, time=300.0, energy=5.0e4)
    (t,) = task_tradeoffs(runs)
    assert [p.axis.key for p in t.panels] == ["time", "energy", "params", "flops"]
    energy = t.panels[1]
    assert energy.drawn == ["B"] and energy.missing == ["A"]
    assert "GPU energy, training (J)" in t.svg
    assert t.note == "Not drawn in every panel: A (no GPU energy recorded)."


def test_energy_summed_over_gpus() -> None:
    r = result("a", 0, 0.5)
    r["resources"]["phases"]["train"].update({"gpu:0/energy (J)": 100.0, "gpu:1/energy (J)": 50.0})
    (t,) = task_tradeoffs([r])
    assert t.points[0].costs["energy"] == 150.0


def test_a_task_without_cost_gets_a_note_not_a_failure() -> None:
    runs = [result("a", 0, 0.5, time=None, params=None, flops=None),
            result("b", 0, 0.4, time=None, params=None, flops=None, task="other")]
    runs.append(result("c", 0, 0.3, task="other"))
    first, other = task_tradeoffs(runs)
    assert first.svg is None and first.note == NO_COST_NOTE and first.panels == []
    assert "no cost recorded" in first.description
    assert other.svg is not None and other.note == "Not drawn in every panel: " + "; ".join(
        f"B ({what})" for what in ("no training time recorded", "no parameter count", "no FLOP count")) + "."


def test_a_task_without_an_ok_value_and_an_unknown_task_type() -> None:
    failed = result("a", 0, None, status="failed")
    odd = result("b", 0, 0.5, task="odd")
    odd["task_type"] = "no_such_type"
    first, second = task_tradeoffs([failed, odd])
    assert first.svg is None and "No ok run of this task has a value of MAE (eV/atom)" in first.note
    assert second.svg is None and "no main metric" in second.note


def test_higher_is_better_metric() -> None:
    runs = []
    for model, auc, time in (("a", 0.70, 10.0), ("b", 0.90, 50.0), ("c", 0.80, 60.0)):
        r = result(model, 0, None, time=time, task="gap")
        r.update(task_type="classification", metrics={"ROC-AUC": auc})
        r["task"]["unit"] = None
        r["baseline"] = {"predictor": "the training prior", "metrics": {"ROC-AUC": 0.5}}
        runs.append(r)
    (t,) = task_tradeoffs(runs)
    assert (t.metric, t.direction, t.baseline) == ("ROC-AUC", "higher", 0.5)
    assert t.panels[0].front == ["A", "B"]
    assert "higher is better" in t.svg


def test_names_are_escaped_in_the_svg() -> None:
    evil = "<script>alert(1)</script>"
    runs = [result("a", 0, 0.5, display=evil), result("b", 0, 0.4, time=300.0, display="cost $x^2$ & co")]
    (t,) = task_tradeoffs(runs)
    assert "<script>" not in t.svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in t.svg
    assert ">cost $x^2$ &amp; co</text>" in t.svg  # drawn as written, not as mathtext


def test_two_models_with_one_display_name_are_told_apart() -> None:
    (t,) = task_tradeoffs([result("a1", 0, 0.5, display="Net"), result("a2", 0, 0.4, time=200.0, display="Net")])
    assert [p.label for p in t.points] == ["Net (a1)", "Net (a2)"]


def test_records_unreadable_skipped() -> None:
    good = result("a", 0, 0.5)
    (t,) = task_tradeoffs([RunRecord(Path("x"), good, None), RunRecord(Path("y"), None, "not valid JSON")])
    assert [p.model for p in t.points] == ["a"]


# ----------------------------------------------------------------------------------------------
# in the report: first, before any table
# ----------------------------------------------------------------------------------------------


def _rewrite(run_dir: Path, res: dict) -> None:
    validate_result(res)
    (run_dir / "result.json").write_text(json.dumps(res), encoding="utf-8")


def test_report_opens_with_the_figures(tmp_path: Path) -> None:
    dirs = [tmp_path / n for n in ("a0", "a1", "b0", "cls")]
    for d, (model, seed) in zip(dirs[:3], (("alpha", 0), ("alpha", 1), ("beta", 0))):
        res = make_fake_run(d, seed=seed, display_name=model.title(), n_samples=200 + 300 * seed)
        res["model"]["name"] = model
        res["baseline"] = {"predictor": "the training mean", "metrics": {**res["metrics"], "MAE": 0.7}}
        _rewrite(d, res)
    res = make_fake_run(dirs[3], task_type="classification", seed=5)
    res["resources"]["phases"] = {}
    res["model_stats"] = {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None}
    _rewrite(dirs[3], res)
    html = render_report(dirs, tmp_path / "report.html").read_text(encoding="utf-8")
    start = html.index('<section id="tradeoff"')
    assert start < html.index("<table")
    section = html[start:html.index("</section>", start)]
    assert section.count("<svg") == 1 and section.count('<figure class="tradeoff"') == 2
    assert ">Alpha</text>" in section and ">Beta</text>" in section
    assert "trivial baseline 0.7000 (the training mean)" in section
    assert NO_COST_NOTE in section  # the classification task: a note, no figure
    assert 'href="#tradeoff"' in html
    maes = [json.loads((d / "result.json").read_text())["metrics"]["MAE"] for d in dirs[:2]]
    mean, std = format_metric(statistics.fmean(maes)), format_metric(statistics.stdev(maes))
    assert f"Alpha: {mean} ± {std} over 2 ok runs" in section  # the text alternative (<desc>)


def test_long_names_are_cut_in_the_figure_only() -> None:
    long = "Linear potential (per-element energies, zero forces)"
    (t,) = task_tradeoffs([result("a", 0, 0.5, display=long), result("b", 0, 0.4, time=300.0)])
    assert f">{long}</text>" not in t.svg
    assert t.svg.count(">Linear potential (per-eleme…</text>") == 3  # 28 characters, in each panel
    assert t.points[0].label == long and f"{long}: 0.5000" in t.description


def test_a_single_model_gets_no_front_line() -> None:
    (t,) = task_tradeoffs([result("a", 0, 0.5)])
    assert [p.front for p in t.panels] == [["A"]] * 3
    assert ">Pareto front</text>" not in t.svg and ">trivial baseline</text>" in t.svg
