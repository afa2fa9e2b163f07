"""The runner's optional model saving (``runner.run._save_model`` around
``ModelAdapter.save_model``): the file is recorded relative to the run directory; an adapter
without it saves nothing; a failing or misdirected save is a note, never a failed run."""

from __future__ import annotations

from pathlib import Path

from runner.contract import ModelAdapter, TaskSpec
from runner.run import _save_model

TASK = TaskSpec(name="t", task_type="potential", target="energy_forces", unit="eV")


class _Adapter(ModelAdapter):
    network = None

    def fit(self, train, val, on_epoch_end):
        pass

    def forward_inputs(self, samples):
        return ()


class _Saving(_Adapter):
    def __init__(self, how: str):
        super().__init__(TASK, {}, "cpu", 0)
        self.how = how

    def save_model(self, path: Path):
        if self.how == "raise":
            raise OSError("disk full")
        if self.how == "elsewhere":
            other = path.parents[1] / "outside.model"
            other.write_bytes(b"x")
            return other
        if self.how == "none":
            return None
        path.write_bytes(b"weights")
        return path


def test_saved_model_is_recorded_relative_to_the_run(tmp_path):
    notes: list = []
    assert _save_model(_Saving("ok"), tmp_path, "mace", notes) == "model/mace.model"
    assert (tmp_path / "model" / "mace.model").read_bytes() == b"weights" and notes == []


def test_adapter_without_save_model_saves_nothing(tmp_path):
    notes: list = []
    assert _save_model(_Adapter(TASK, {}, "cpu", 0), tmp_path, "x", notes) is None
    assert not (tmp_path / "model").exists() and notes == []
    assert _save_model(_Saving("none"), tmp_path, "x", notes) is None and notes == []


def test_failed_or_misplaced_save_is_a_note(tmp_path):
    notes: list = []
    assert _save_model(_Saving("raise"), tmp_path, "x", notes) is None
    assert notes == ["the trained model was not saved (OSError: disk full)"]
    assert _save_model(_Saving("elsewhere"), tmp_path, "x", notes) is None
    assert "not a regular file in" in notes[-1]
