"""MACE (mace-torch, the authors' package) through mateval on real mlearn data, in MACE's own
environment, on small real subsets for one epoch: ``mateval bench --model mace --task mlearn_ge``
ends ok with every potential metric, its baseline, the parameter count, the energy FLOPs and the
trained model saved in the run directory; then ``--task mlearn_si --set foundation_model=<that
model> --set finetune_mode=lora`` fine-tunes it with LoRA adapters end to end (fewer trainable
than total parameters, recorded in the result)."""

import math

import pytest

from metrics import catalogue
from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow


def _bench(results, task: str, *sets: str) -> dict:
    args = ["bench", "--backend", "local", "--model", "mace", "--task", task, "--results-dir", str(results),
            "--max-samples", "train=16,val=4,test=6", "--set", "epochs=1", "--no-report"]
    for item in sets:
        args += ["--set", item]
    out = run_mateval(args, cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "potential", result.get("error")
    assert set(result["metrics"]) == set(catalogue.names("potential"))
    assert all(math.isfinite(v) for v in result["metrics"].values())
    assert set(result["baseline"]["metrics"]) == set(result["metrics"])
    assert len(result["history"]) == 1 and math.isfinite(result["history"][0]["train_loss"])
    assert result["model_stats"]["flops"]["forward_per_sample"] > 0
    assert (run_dir / result["files"]["predictions_extxyz"]).is_file()
    assert "mace-torch" in str(result["environment"])
    result["_run_dir"] = run_dir
    return result


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """MACE trained from scratch on a small mlearn Ge subset; its saved model is the LoRA base."""
    return _bench(tmp_path_factory.mktemp("ge"), "mlearn_ge")


def test_bench_mace_from_scratch_saves_its_model(base_run):
    stats = base_run["model_stats"]
    assert stats["params"] > 0 and stats["trainable_params"] == stats["params"]
    model = base_run["_run_dir"] / base_run["files"]["model"]
    assert base_run["files"]["model"] == "model/mace.model" and model.stat().st_size > 10_000
    assert "model/mace.model" in base_run["integrity"]["files"]  # sealed with the rest of the run


def test_bench_mace_lora_finetune_from_a_locally_trained_model(base_run, tmp_path):
    """LoRA from the Ge model onto Si: the foundation's architecture and weights, only the LoRA
    adapters trainable (``mace.modules.lora.inject_LoRAs``)."""
    model = base_run["_run_dir"] / base_run["files"]["model"]
    tuned = _bench(tmp_path, "mlearn_si", f"foundation_model={model}", "finetune_mode=lora", "lora_rank=2")
    stats = tuned["model_stats"]
    assert 0 < stats["trainable_params"] < stats["params"]
    # the foundation's weights plus the adapters: more parameters than the base, few of them trainable
    assert stats["params"] > base_run["model_stats"]["params"]
    assert stats["trainable_params"] < 0.5 * base_run["model_stats"]["params"]
    assert tuned["hyperparameters"]["effective"]["finetune_mode"] == "lora"
