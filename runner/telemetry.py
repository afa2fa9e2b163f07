"""Resource telemetry: what a run costs in time, GPU, host CPU, host memory and energy.

One :class:`nvitop.ResourceMetricCollector` per run with nested tags: ``overall`` for the whole
measured run and one child tag per phase (``train``, ``predict``). Our sampler thread snapshots it
every ``interval`` seconds and writes the time series (``timeseries.csv``). Key names are nvitop's, without the tag prefix:
``duration (s)``, ``host/cpu_percent (%)/mean``, ``host/memory_percent (%)/mean`` and, with a GPU,
``gpu:0/gpu_utilization (%)/mean``, ``gpu:0/memory_utilization (%)/mean`` (memory *bandwidth*
activity), ``gpu:0/memory_percent (%)/mean`` (memory occupancy), ``gpu:0/power_usage (W)/mean``, each
with ``/min``, ``/max`` and ``/last``. nvitop's means are time-weighted (trapezoidal).

Added by us:

- ``gpu:<i>/energy (J)``: the difference of NVML's ``nvmlDeviceGetTotalEnergyConsumption`` counter
  (mJ since driver load) between the phase's start and end. Not derived from mean power.
- ``gpu:<i>/peak_memory_allocated (MiB)``: ``torch.cuda.max_memory_allocated`` (this process only),
  for the phase.

Known traps handled here:

- a collector is dead once all its tags are deactivated, so we keep ``overall`` active for the run
  and switch only the phase tags;
- psutil keeps ``cpu_percent``'s previous reading per thread, and a thread's first call returns
  0.0; so every snapshot is taken in one thread, our sampler thread, which primes psutil and waits
  ``PRIME_S`` before its first snapshot (the caller does not wait for it: entering costs well under
  a millisecond). nvitop's own daemon thread and ``collect()`` do not
  snapshot (:class:`SingleSamplerCollector`), and the snapshot that closes a phase is taken by the
  sampler thread on request, only when at least half an interval has passed since the last one
  (two snapshots milliseconds apart give spurious 0 % readings);
- NVML inside a container does not see host PIDs, so GPU metrics are per device, not per process.

Without NVML (no driver, or a CPU-only host) the collector gets ``devices=[]`` (host metrics only,
no NVML calls) and every GPU metric is listed in ``unavailable`` with the reason.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

PRIME_S = 0.1
#: nvitop metrics kept in the time series (instantaneous values, nvitop's '/last').
TIMESERIES_HOST = ("host/cpu_percent (%)", "host/memory_percent (%)", "host/memory_used (GiB)")
TIMESERIES_GPU = ("gpu_utilization (%)", "memory_utilization (%)", "memory_percent (%)", "power_usage (W)")
GPU_METRICS = ("gpu_utilization (%)", "memory_utilization (%)", "memory_percent (%)", "power_usage (W)",
               "energy (J)", "peak_memory_allocated (MiB)")


@dataclass
class GpuProbe:
    """What the host offers: nvitop ``Device`` objects, or the reason there are none."""

    devices: list = field(default_factory=list)
    reason: str | None = None
    driver_version: str | None = None
    names: list[str] = field(default_factory=list)


def probe_gpus() -> GpuProbe:
    """Find the GPUs through NVML without noise.

    NVML is looked up with ``ctypes`` first: on a host without the NVIDIA driver nvitop would log a
    critical "NVML not found" banner and ``Device.count()`` would raise.
    """
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError as exc:
        return GpuProbe(reason=f"NVML not found (no NVIDIA driver on this host: {exc})")
    from nvitop import Device
    from nvitop.api import libnvml

    level = libnvml.LOGGER.level
    libnvml.LOGGER.setLevel(logging.CRITICAL + 1)
    try:
        devices = Device.all()
        driver = Device.driver_version()
    except Exception as exc:  # NVML present but unusable (e.g. driver/library mismatch)
        return GpuProbe(reason=f"NVML failed: {type(exc).__name__}: {exc}")
    finally:
        libnvml.LOGGER.setLevel(level)
    if not devices:
        return GpuProbe(reason="NVML found no GPU on this host", driver_version=str(driver))
    return GpuProbe(devices=devices, driver_version=str(driver), names=[str(d.name()) for d in devices])


def _single_sampler_collector_class():
    from nvitop import ResourceMetricCollector
    from nvitop.api.collector import SnapshotResult

    class SingleSamplerCollector(ResourceMetricCollector):
        """nvitop's collector, snapshotted only through :meth:`snapshot_now` (our sampler thread).

        ``take_snapshots`` (called by nvitop's own daemon thread and by ``collect()``) is a no-op, so
        two snapshots never come milliseconds apart. Aggregation and key names are nvitop's.
        """

        def take_snapshots(self) -> SnapshotResult:  # noqa: D102 - see class docstring
            return SnapshotResult([], [])

        def snapshot_now(self) -> SnapshotResult:
            """Take one real snapshot into the active metric buffers."""
            return ResourceMetricCollector.take_snapshots(self)

    return SingleSamplerCollector


def nvml_energy_mj(device: Any) -> float | None:
    """NVML's total-energy counter of ``device`` in mJ, or ``None`` where unsupported."""
    from nvitop.api import libnvml

    value = libnvml.nvmlQuery("nvmlDeviceGetTotalEnergyConsumption", device.handle)
    return float(value) if isinstance(value, (int, float)) else None


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def strip_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float | None]:
    """Drop nvitop's tag prefix and its timestamp keys; NaN becomes ``None`` (JSON ``null``)."""
    out = {}
    for key, value in metrics.items():
        if not key.startswith(prefix + "/"):
            continue
        name = key[len(prefix) + 1:]
        if name in ("timestamp", "last_timestamp"):
            continue
        out[name] = _finite_or_none(value)
    return out


class Telemetry:
    """Samples resources for one run.

    Usage::

        telemetry = Telemetry(interval=1.0, timeseries_path=run_dir / "timeseries.csv")
        with telemetry:                       # tag 'overall'
            with telemetry.phase("train"):    # tag 'overall/train'
                ...
            with telemetry.phase("predict"):
                ...
        report = telemetry.report()           # {"sampling_interval_s", "overall", "phases", "unavailable"}

    Args:
        interval: sampling period in seconds (> 0).
        timeseries_path: where to write the time series CSV (``timestamp``, ``elapsed (s)``,
            ``phase``, then instantaneous metric columns), or ``None``.
        probe: GPU probe result (default: :func:`probe_gpus`); tests inject one.
        energy_reader: ``device -> mJ or None`` (default: :func:`nvml_energy_mj`).
        peak_memory: ``() -> (reset, read_mib)`` callables for peak GPU memory, or ``None``.

    Raises:
        ValueError: interval not positive.
    """

    def __init__(self, interval: float = 1.0, timeseries_path: Path | None = None, *, probe: GpuProbe | None = None,
                 energy_reader: Callable[[Any], float | None] = nvml_energy_mj,
                 peak_memory: tuple[Callable[[], None], Callable[[], float]] | None = None):
        if not interval > 0:
            raise ValueError(f"telemetry interval must be > 0 s, got {interval!r}")
        self.interval = float(interval)
        self.timeseries_path = timeseries_path
        self.probe = probe if probe is not None else probe_gpus()
        self.energy_reader = energy_reader
        self.peak_memory = peak_memory
        self.unavailable: list[dict[str, str]] = []
        if not self.probe.devices:
            self.unavailable = [{"metric": f"gpu:*/{name}", "reason": self.probe.reason or "no GPU"}
                                for name in GPU_METRICS]
        self._phase_metrics: dict[str, dict[str, float | None]] = {}
        self._overall: dict[str, float | None] = {}
        self._current_phase = "setup"
        self._rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._collector = None
        self._energy_start: dict[int, float | None] = {}
        self._t0 = 0.0
        self._last_snapshot = -math.inf
        self._requests: "queue.Queue[threading.Event | None]" = queue.Queue()
        self._ready = threading.Event()

    # -- energy -------------------------------------------------------------------------------
    def _energy_snapshot(self) -> dict[int, float | None]:
        return {index: self.energy_reader(device) for index, device in enumerate(self.probe.devices)}

    def _energy_between(self, start: dict[int, float | None], end: dict[int, float | None]) -> dict[str, float | None]:
        out = {}
        for index in start:
            if start[index] is None or end.get(index) is None:
                out[f"gpu:{index}/energy (J)"] = None
                reason = "nvmlDeviceGetTotalEnergyConsumption not supported by this GPU or driver"
                if not any(u["metric"] == f"gpu:{index}/energy (J)" for u in self.unavailable):
                    self.unavailable.append({"metric": f"gpu:{index}/energy (J)", "reason": reason})
            else:
                out[f"gpu:{index}/energy (J)"] = (end[index] - start[index]) / 1000.0
        return out

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> "Telemetry":
        collector_class = _single_sampler_collector_class()
        self._collector = collector_class(devices=self.probe.devices, root_pids={os.getpid()}, interval=self.interval)
        self._t0 = time.time()
        self._energy_start = self._energy_snapshot()
        self._collector.activate(tag="overall")
        self._thread = threading.Thread(target=self._sample_loop, name="mateval-telemetry", daemon=True)
        self._thread.start()  # it primes psutil and takes the first snapshot while the caller goes on
        return self

    def __exit__(self, *exc_info) -> None:
        self._requests.put(None)  # final snapshot, then the sampler thread ends
        if self._thread is not None:
            self._thread.join(timeout=10 * self.interval + 30)
        self._overall = strip_prefix(self._collector.collect(), "overall")
        self._overall.update(self._energy_between(self._energy_start, self._energy_snapshot()))
        self._collector.deactivate("overall")
        self._write_timeseries()

    def _boundary(self, *, opening: bool = False) -> None:
        """Ask the sampler thread for a phase-boundary snapshot and wait for it.

        ``opening``: the snapshot closes the stretch before a phase. While the sampler is still
        priming (no snapshot yet) there is no such stretch to close, so the caller does not wait
        ``PRIME_S``; the first snapshot then falls into the new phase.
        """
        if opening and not self._ready.is_set():
            return
        done = threading.Event()
        self._requests.put(done)
        done.wait(timeout=10 * self.interval + 30)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Measure ``name`` (``train``, ``predict`` or ``generate``) as a child of ``overall``; nests once only."""
        tag = f"overall/{name}"
        energy_start = self._energy_snapshot()
        if self.peak_memory is not None:
            self.peak_memory[0]()
        self._boundary(opening=True)  # close the previous stretch before the phase starts
        self._collector.activate(tag=name)
        self._current_phase = name
        try:
            yield
        finally:
            self._boundary()
            metrics = strip_prefix(self._collector.collect(), tag)
            self._collector.deactivate(name)
            self._current_phase = "between"
            metrics.update(self._energy_between(energy_start, self._energy_snapshot()))
            if self.peak_memory is not None:
                for index, _ in enumerate(self.probe.devices[:1]):
                    metrics[f"gpu:{index}/peak_memory_allocated (MiB)"] = self.peak_memory[1]()
            self._phase_metrics[name] = metrics

    def _snapshot(self) -> None:
        """Take one snapshot (sampler thread only), unless the last one is under half an interval old."""
        if time.monotonic() - self._last_snapshot < self.interval / 2:
            return
        self._collector.snapshot_now()
        self._last_snapshot = time.monotonic()
        self._rows.append(self._row(self._collector.collect()))

    def _sample_loop(self) -> None:
        import psutil

        psutil.cpu_percent(interval=None)  # this thread's first call only sets its baseline
        time.sleep(PRIME_S)
        self._snapshot()
        self._ready.set()
        next_tick = time.monotonic() + self.interval
        while True:
            try:
                request = self._requests.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                self._snapshot()
                next_tick = max(next_tick + self.interval, time.monotonic() + self.interval / 2)
                continue
            self._snapshot()
            if request is None:
                return
            request.set()

    def _row(self, snapshot: dict[str, float]) -> dict[str, Any]:
        now = time.time()
        last = {}
        for key, value in snapshot.items():
            if key.endswith("/last"):
                # overall[/phase]/<metric>/last -> <metric>
                parts = key.split("/")
                start = 2 if len(parts) > 2 and parts[1] == self._current_phase else 1
                last["/".join(parts[start:-1])] = value
        row = {"timestamp": round(now, 3), "elapsed (s)": round(now - self._t0, 3), "phase": self._current_phase}
        for name in TIMESERIES_HOST:
            row[name] = _finite_or_none(last.get(name, math.nan))
        for index, _ in enumerate(self.probe.devices):
            for name in TIMESERIES_GPU:
                row[f"gpu:{index}/{name}"] = _finite_or_none(last.get(f"gpu:{index}/{name}", math.nan))
        return row

    def _write_timeseries(self) -> None:
        if self.timeseries_path is None:
            return
        columns = ["timestamp", "elapsed (s)", "phase", *TIMESERIES_HOST]
        columns += [f"gpu:{i}/{n}" for i, _ in enumerate(self.probe.devices) for n in TIMESERIES_GPU]
        tmp = Path(str(self.timeseries_path) + ".tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self._rows)
        os.replace(tmp, self.timeseries_path)

    def report(self) -> dict[str, Any]:
        """The ``resources`` block of ``result.json`` (after the ``with`` block has ended)."""
        return {
            "sampling_interval_s": self.interval,
            "overall": self._overall,
            "phases": self._phase_metrics,
            "unavailable": self.unavailable,
        }

    @property
    def samples(self) -> list[dict[str, Any]]:
        """The time-series rows collected so far."""
        return list(self._rows)
