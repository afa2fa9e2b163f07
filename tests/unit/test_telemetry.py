"""Telemetry: nvitop key names, phases, time series, the no-GPU path and energy integration."""

import csv
import threading
import time

import pytest

from runner.telemetry import GPU_METRICS, GpuProbe, Telemetry, strip_prefix


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


def test_phases_keys_and_timeseries(tmp_path):
    path = tmp_path / "timeseries.csv"
    telemetry = Telemetry(interval=0.1, timeseries_path=path, probe=GpuProbe(reason="test: no GPU"))
    with telemetry:
        with telemetry.phase("train"):
            busy(1.0)
        with telemetry.phase("predict"):
            time.sleep(0.4)
    report = telemetry.report()
    assert report["sampling_interval_s"] == 0.1
    for block in (report["overall"], report["phases"]["train"], report["phases"]["predict"]):
        for key in ("duration (s)", "host/cpu_percent (%)/mean", "host/cpu_percent (%)/min",
                    "host/cpu_percent (%)/max", "host/cpu_percent (%)/last", "host/memory_percent (%)/mean"):
            assert key in block, key
    assert report["phases"]["train"]["duration (s)"] == pytest.approx(1.0, abs=0.3)
    assert report["overall"]["duration (s)"] >= report["phases"]["train"]["duration (s)"] + 0.3
    # one busy thread keeps at least one core of this host busy
    import os
    assert report["phases"]["train"]["host/cpu_percent (%)/mean"] > 0.6 * 100 / os.cpu_count()
    assert 0 < report["overall"]["host/memory_percent (%)/mean"] < 100
    rows = list(csv.DictReader(path.open()))
    assert len(rows) >= 8
    assert {"timestamp", "elapsed (s)", "phase", "host/cpu_percent (%)"} <= set(rows[0])
    train_rows = [r for r in rows if r["phase"] == "train"]
    assert train_rows and all(float(r["host/cpu_percent (%)"]) > 0 for r in train_rows), \
        "a sample in a busy phase read 0 % CPU: two snapshots came too close together"


def test_no_gpu_is_recorded_not_fatal():
    telemetry = Telemetry(interval=0.2, probe=GpuProbe(reason="NVML not found (test)"))
    with telemetry:
        time.sleep(0.3)
    report = telemetry.report()
    assert {u["metric"] for u in report["unavailable"]} == {f"gpu:*/{m}" for m in GPU_METRICS}
    assert all(u["reason"] == "NVML not found (test)" for u in report["unavailable"])
    assert not any(key.startswith("gpu:") for key in report["overall"])


def test_invalid_interval():
    with pytest.raises(ValueError, match="interval"):
        Telemetry(interval=0)


def test_energy_is_the_counter_difference_in_joules():
    # A fake NVML energy counter (mJ) that grows by 250 mJ per read: our own integration logic.
    counter = {"value": 1_000_000.0}
    lock = threading.Lock()

    def reader(device):
        with lock:
            counter["value"] += 250.0
            return counter["value"]

    telemetry = Telemetry(interval=0.2, probe=GpuProbe(reason=None), energy_reader=reader)
    telemetry.probe.devices = ["fake-gpu"]  # devices=[...] only for the energy path
    start = telemetry._energy_snapshot()
    end = telemetry._energy_snapshot()
    assert telemetry._energy_between(start, end) == {"gpu:0/energy (J)": 0.25}
    assert telemetry._energy_between({0: None}, {0: 5.0}) == {"gpu:0/energy (J)": None}
    assert telemetry.unavailable[-1]["metric"] == "gpu:0/energy (J)"


def test_strip_prefix_drops_timestamps_and_nan():
    metrics = {"overall/duration (s)": 2.0, "overall/timestamp": 1.0, "overall/last_timestamp": 1.0,
               "overall/host/cpu_percent (%)/mean": float("nan"), "other/x": 1.0}
    assert strip_prefix(metrics, "overall") == {"duration (s)": 2.0, "host/cpu_percent (%)/mean": None}


def test_opening_a_phase_does_not_wait_for_the_priming_snapshot():
    """Before the sampler's first snapshot there is no stretch to close: no request is queued."""
    telemetry = Telemetry(interval=1.0, probe=GpuProbe(reason="test: no GPU"))
    telemetry._boundary(opening=True)
    assert telemetry._requests.empty()
    telemetry._ready.set()  # after the first snapshot an opening boundary is a real request
    waiter = threading.Thread(target=telemetry._boundary, kwargs={"opening": True}, daemon=True)
    waiter.start()
    request = telemetry._requests.get(timeout=5)
    request.set()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
