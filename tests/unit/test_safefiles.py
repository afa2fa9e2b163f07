"""The reader of run-directory files (runner/safefiles.py) and the host functions built on it:
no symbolic link followed, only regular files, sizes and JSON depth bounded, refusals named; and
collecting a run never raises (orchestrator/results.py: collect)."""

import errno
import json
import os
import threading

import pytest

from orchestrator import results
from orchestrator.backends.base import RunOutcome
from orchestrator.reader import read_run
from runner import safefiles
from runner.result import ResultError, log_tail, read_result
from runner.tasks.base import OutputError, read_columns
from runner.wire import RunSpec

SECRET = "host-secret-4f1c9e"


@pytest.fixture
def host_file(tmp_path):
    path = tmp_path / "host" / "secret.txt"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    return path


def test_regular_file_is_read(run_dir):
    (run_dir / "a.txt").write_text("hello")
    assert safefiles.read_bytes(run_dir / "a.txt", 100) == b"hello"
    assert safefiles.read_text(run_dir / "a.txt", 100, root=run_dir) == "hello"


def test_symlink_is_refused_and_named(run_dir, host_file):
    (run_dir / "run.log").symlink_to(host_file)
    with pytest.raises(safefiles.RefusedFile, match=r"run\.log is a symbolic link; not read"):
        safefiles.read_bytes(run_dir / "run.log", 1000)
    with pytest.raises(safefiles.RefusedFile):
        safefiles.read_tail(run_dir / "run.log")
    with pytest.raises(safefiles.RefusedFile):
        safefiles.open_append(run_dir / "run.log")
    assert host_file.read_text() == SECRET + "\n"  # never written through the link
    tail = log_tail(run_dir / "run.log")
    assert SECRET not in tail and tail == "run.log is a symbolic link; not read"


def test_symlinked_parent_directory_inside_the_run_is_refused(run_dir, host_file):
    (run_dir / "sub").symlink_to(host_file.parent)
    with pytest.raises(safefiles.RefusedFile, match=r"symbolic link \(sub\) on its path"):
        safefiles.read_bytes(run_dir / "sub" / "secret.txt", 1000, root=run_dir)


def test_fifo_and_directory_are_refused_without_blocking(run_dir):
    os.mkfifo(run_dir / "pipe")
    (run_dir / "dir").mkdir()
    outcome = {}

    def read_fifo():
        try:
            safefiles.read_bytes(run_dir / "pipe", 100)
        except safefiles.RefusedFile as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=read_fifo, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert "pipe is a FIFO, not a regular file; not read" in outcome["error"]
    with pytest.raises(safefiles.RefusedFile, match="dir is a directory"):
        safefiles.read_bytes(run_dir / "dir", 100)
    with pytest.raises(safefiles.RefusedFile):
        safefiles.open_append(run_dir / "pipe")


def test_size_cap(run_dir):
    (run_dir / "big.csv").write_bytes(b"x" * 1001)
    with pytest.raises(safefiles.RefusedFile, match="larger than the 1000 bytes allowed"):
        safefiles.read_bytes(run_dir / "big.csv", 1000)
    assert len(safefiles.read_bytes(run_dir / "big.csv", 1001)) == 1001


def test_tail_reads_only_the_end(run_dir):
    lines = [f"line {i}" for i in range(200_000)]
    (run_dir / "run.log").write_text("\n".join(lines) + "\n")
    tail = safefiles.read_tail(run_dir / "run.log", max_bytes=1000)
    assert tail.endswith("line 199999\n") and len(tail) <= 1000
    assert tail.splitlines()[0].startswith("line ")  # the cut first line is dropped
    assert log_tail(run_dir / "run.log").splitlines()[-1] == "line 199999"


def test_json_depth_cap(run_dir):
    (run_dir / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(safefiles.RefusedFile, match="nested 100000 levels deep, more than the 64 allowed"):
        safefiles.load_json(run_dir / "deep.json")
    (run_dir / "ok.json").write_text(json.dumps({"a": [[1, 2], {"b": "[[[[{{{{"}]}))
    assert safefiles.load_json(run_dir / "ok.json", max_depth=3) == {"a": [[1, 2], {"b": "[[[[{{{{"}]}
    assert safefiles.json_depth('"[" ') == 0 and safefiles.json_depth(r'["\"[", [1]]') == 2


def test_json_size_cap(run_dir):
    (run_dir / "big.json").write_text(json.dumps(list(range(1000))))
    with pytest.raises(safefiles.RefusedFile, match="larger than"):
        safefiles.load_json(run_dir / "big.json", max_bytes=100)


def test_read_result_deep_or_linked_is_a_result_error(run_dir, host_file):
    (run_dir / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultError, match="result.json is nested 100000 levels deep"):
        read_result(run_dir / "result.json")
    record = read_run(run_dir)
    assert not record.ok and "nested" in record.error
    (run_dir / "result.json").unlink()
    (run_dir / "result.json").symlink_to(host_file)
    with pytest.raises(ResultError, match="result.json is a symbolic link; not read"):
        read_result(run_dir / "result.json")


def test_model_output_csv_link_is_refused(run_dir, host_file):
    (run_dir / "model_predictions.csv").symlink_to(host_file)
    with pytest.raises(OutputError, match="symbolic link"):
        read_columns(run_dir / "model_predictions.csv", ["id"])


def test_report_log_tail_does_not_follow_a_link(run_dir, host_file):
    from orchestrator.report.run_view import _log_tail

    (run_dir / "run.log").symlink_to(host_file)
    assert _log_tail(run_dir / "run.log") == "run.log is a symbolic link; not read"


def test_report_csv_link_is_a_note(run_dir, host_file):
    from orchestrator.report.figures import read_csv, run_file

    (run_dir / "timeseries.csv").symlink_to(host_file)
    frame, note = read_csv(run_dir / "timeseries.csv", [])
    assert frame is None and "timeseries.csv is a symbolic link; not read" in note
    (run_dir / "sub").symlink_to(host_file.parent)
    assert run_file(run_dir, {"files": {"log": "sub/secret.txt"}}, "log", "run.log") == run_dir / "run.log"


def _spec(run_id: str) -> RunSpec:
    return RunSpec(run_id=run_id, model="m", model_dir="/nonexistent", task="perov5_heat_ref")


def test_finalize_names_a_replaced_log_and_never_reads_it(tmp_path, host_file):
    staging = results.prepare(tmp_path, _spec("r1"))
    (staging / "run.log").symlink_to(host_file)
    result = results.finalize(staging, _spec("r1"), RunOutcome(exit_code=3, timed_out=False, wall_s=1.0))
    text = json.dumps(result)
    assert SECRET not in text and SECRET not in (staging / "result.json").read_text()
    assert "run.log was replaced by a symbolic link during the run; not read" in result["error"]["message"]
    assert any("symbolic link" in note for note in result["notes"])
    assert (staging / "run.log.refused").is_symlink() and not (staging / "run.log").is_symlink()
    assert host_file.read_text() == SECRET + "\n"


def test_collect_records_a_full_disk_and_keeps_the_log(tmp_path, monkeypatch):
    staging = results.prepare(tmp_path, _spec("r2"))
    (staging / "run.log").write_text("epoch 1\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "finalize", full)
    result, published, problem = results.collect(staging, _spec("r2"), RunOutcome(0, False, 1.0), tmp_path)
    assert published == tmp_path / "r2" and "No space left on device" in problem
    assert result["status"] == "failed" and result["error"]["type"] == "CollectError"
    assert "No space left on device" in read_result(published / "result.json")["error"]["message"]
    assert (published / "run.log").read_text().startswith("epoch 1\n")


def test_collect_publishes_even_when_no_result_can_be_written(tmp_path, monkeypatch):
    staging = results.prepare(tmp_path, _spec("r3"))
    (staging / "run.log").write_text("epoch 1\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "finalize", full)
    monkeypatch.setattr(results, "write_result", full)
    result, published, problem = results.collect(staging, _spec("r3"), RunOutcome(0, False, 1.0), tmp_path)
    assert published == tmp_path / "r3" and "no result could be written either" in problem
    assert (published / "run.log").exists()
    assert published in results.run_dirs(tmp_path)
    record = read_run(published)
    assert not record.ok and "not found" in record.error
