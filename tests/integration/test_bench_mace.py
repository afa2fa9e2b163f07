"""MACE (mace-torch, the authors' package) through mateval on real mlearn data, in MACE's own
environment, on small real subsets for one epoch: ``mateval bench --model mace --task mlearn_si
--seed 1`` ends ok with every potential metric, its baseline, the parameter count, the energy
FLOPs and the trained model saved in the run directory; then ``--seed 0 --set
foundation_model=<that model> --set finetune_mode=lora`` fine-tunes it with LoRA adapters end to
end (fewer trainable than total parameters, recorded in the result).

MACE fine-tunes only the elements its foundation knows, and each mlearn task has one element, so
the base here is Si trained on another draw of the data (seed 1: other training cells, other
validation cells); the cross-element case (a mostly-Ge base with a few Si cells, fine-tuned on
Si) is in ``images/mace/tests``. A foundation without the task's element is a clear error
(``mlearn_ge`` from the Si model)."""

import math

import pytest

from metrics import catalogue
from runner.result import read_result
from tests.conftest import REPO_ROOT, require, run_mateval, shared_data_dir

pytestmark = pytest.mark.slow


def _run(results, task: str, *sets: str, data: str = "subset", seed: int = 0):
    args = ["bench", "--backend", "local", "--model", "mace", "--task", task, "--results-dir", str(results),
            "--max-samples", "train=16,val=4,test=6", "--set", "epochs=1", "--no-report", "--data", data,
            "--seed", str(seed)]
    for item in sets:
        args += ["--set", item]
    env = None
    if data == "full":
        shared = shared_data_dir()
        require(shared is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
        env = {"MATEVAL_DATA": str(shared)}
    return run_mateval(args, cwd=REPO_ROOT, env=env, timeout=1800)


def _bench(results, task: str, *sets: str, seed: int = 0) -> dict:
    out = _run(results, task, *sets, seed=seed)
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
    """MACE trained from scratch on a small subset of mlearn Si drawn with seed 1; its saved model
    is the LoRA base."""
    return _bench(tmp_path_factory.mktemp("base"), "mlearn_si", seed=1)


def test_bench_mace_from_scratch_saves_its_model(base_run):
    stats = base_run["model_stats"]
    assert stats["params"] > 0 and stats["trainable_params"] == stats["params"]
    model = base_run["_run_dir"] / base_run["files"]["model"]
    assert base_run["files"]["model"] == "model/mace.model" and model.stat().st_size > 10_000
    assert "model/mace.model" in base_run["integrity"]["files"]  # sealed with the rest of the run


def test_bench_mace_lora_finetune_from_a_locally_trained_model(base_run, tmp_path):
    """LoRA from the seed-1 model onto the seed-0 draw: the foundation's architecture and weights,
    only the LoRA adapters trainable (``mace.modules.lora.inject_LoRAs``)."""
    model = base_run["_run_dir"] / base_run["files"]["model"]
    tuned = _bench(tmp_path, "mlearn_si", f"foundation_model={model}", "finetune_mode=lora", "lora_rank=2")
    stats = tuned["model_stats"]
    assert 0 < stats["trainable_params"] < stats["params"]
    # the foundation's weights plus the adapters: more parameters than the base, few of them trainable
    assert stats["params"] > base_run["model_stats"]["params"]
    assert stats["trainable_params"] < 0.5 * base_run["model_stats"]["params"]
    assert tuned["hyperparameters"]["effective"]["finetune_mode"] == "lora"


def test_foundation_without_the_task_element_is_a_clear_error(base_run, tmp_path):
    model = base_run["_run_dir"] / base_run["files"]["model"]
    out = _run(tmp_path, "mlearn_ge", f"foundation_model={model}", "finetune_mode=lora", data="full")
    assert out.returncode == 1
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "failed" and result["error"]["type"] == "ValueError"
    assert result["error"]["message"] == (f"hyperparameter foundation_model: {model} was trained on Si; it has no "
                                          "weights for Ge of this task (mlearn_ge)")
