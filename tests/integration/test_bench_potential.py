"""The potential task end to end on the local backend: ``mateval bench --model linear_potential
--task mlearn_si`` (a fixture model: per-element energies, zero forces) ends ok with every metric,
the model saw no test energy or force, and the predictions are an extended XYZ file ASE reads."""

import json
import re

import numpy as np
import pytest

from metrics import catalogue
from runner.result import read_result
from runner.tasks import get_task, get_task_type
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval
from tests.unit.test_report import parse_grid

pytestmark = pytest.mark.slow
ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}


def test_bench_linear_potential_on_mlearn_si(tmp_path):
    out = run_mateval(["bench", "--backend", "local", "--model", "linear_potential", "--task", "mlearn_si",
                       "--seed", "2", "--results-dir", str(tmp_path), "--no-report"],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "potential"
    assert result["scoring"]["status"] == "done"
    assert set(result["metrics"]) == set(catalogue.names("potential"))
    assert all(np.isfinite(v) for v in result["metrics"].values())
    assert set(result["metric_details"]["per_config_type"]) == {"AIMD-NVT", "Elastic", "Surface", "Vacancy"}
    assert result["dataset"]["sizes"] == {"train": 193, "val": 21, "test": 25}
    assert result["model_stats"]["params"] == 1  # one reference energy (Si)

    # the model is the task's baseline: its score is the baseline's, computed here independently
    definition = get_task("mlearn_si")
    data = definition.load("subset", [REPO_ROOT / "data"], None, seed=2)
    baseline = get_task_type("potential").baseline(None, data.splits["train"], data.splits["test"], definition.spec,
                                                   None)
    assert result["metrics"] == pytest.approx(baseline.metrics, rel=1e-9)
    # and the scoring stage recorded that baseline, and flags a model without forces
    assert result["baseline"]["metrics"] == pytest.approx(baseline.metrics, rel=1e-9)
    assert "zero_forces" in [flag["code"] for flag in result["flags"]]

    # no test target in the model's inputs; config types are there
    test_rows = [json.loads(line) for line in (run_dir / "inputs" / "test.jsonl").read_text().splitlines()]
    assert len(test_rows) == 25
    assert all(set(row) == {"id", "structure", "info"} for row in test_rows)
    train_rows = (run_dir / "inputs" / "train.jsonl").read_text().splitlines()
    assert all('"energy"' in line and '"forces"' in line for line in train_rows)

    import ase.io

    frames = ase.io.read(run_dir / result["files"]["predictions_extxyz"], index=":")
    assert [f.info["id"] for f in frames] == [row["id"] for row in test_rows]
    assert all(np.all(f.arrays["pred_forces"] == 0.0) for f in frames)
    assert sum(len(f) for f in frames) == result["metric_details"]["n_atoms"] == 1525

    # the report shows the potential section: two parity plots and the per-config-type errors
    out = run_mateval(["report", "--results-dir", str(tmp_path), "-o", str(tmp_path / "report.html")],
                      cwd=REPO_ROOT, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    page = (tmp_path / "report.html").read_text()
    for key in ("parity", "force_parity"):
        match = re.search(rf'<figure class="fig-{key}(?: [a-z ]+)?">(.*?)</figure>', page, re.S)
        assert match and "<svg" in match.group(1), key
    table = page[page.index("Errors per configuration type"):]
    table = table[:table.index("</table>")]
    vacancy = result["metric_details"]["per_config_type"]["Vacancy"]
    assert re.search(rf"<th>Vacancy</th><td class=\"num\">{vacancy['n_structures']}</td>"
                     rf"<td class=\"num\">{vacancy['energy_RMSE']:.4f}</td>", table)
    # and the energy/force table, with this run's energy and force RMSE beside the baseline's
    headers, rows = parse_grid(page, "overview-energy-forces-table")
    assert headers[1:] == ["Linear potential (per-element energies, zero forces)", "baseline"]
    assert [row[headers[0]]["text"] for row in rows[:2]] == ["mlearn_si · E [meV/atom]", "mlearn_si · F [meV/Å]"]
    assert float(rows[0][headers[1]]["data-sort"]) == pytest.approx(result["metrics"]["energy_RMSE"])
    assert float(rows[1][headers[1]]["data-sort"]) == pytest.approx(result["metrics"]["force_RMSE"])
