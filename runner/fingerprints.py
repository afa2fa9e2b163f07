"""CrystalNN and Magpie fingerprints of many crystals: parallel computation and an on-disk cache.

The fingerprints themselves are defined in :mod:`metrics.generation`
(:func:`~metrics.generation.crystalnn_fingerprint`, 61 numbers, and
:func:`~metrics.generation.magpie_fingerprint`, 132 numbers); this module only runs them over a
list of structures, in a process pool, and caches the reference set's fingerprints.

Failures: when the CrystalNN (or Magpie) featurization of a structure raises, or the structure
fingerprint is not finite, that crystal's structure row is all NaN (and so is its composition row
when Magpie raised). :func:`failed_rows` finds those rows; the generation scorer leaves such a
crystal out of coverage (CDVAE's ``filter_fps``: "counts crystal as invalid if fingerprint cannot
be constructed").

Processes: a :class:`FingerprintPool` of ``n_jobs`` worker processes from the ``forkserver`` start
method where the platform has it (``spawn`` elsewhere), so that workers never inherit the parent's
threads or CUDA state; the fork server preloads pymatgen and matminer, so their import cost is
paid once per Python process, and one pool serves the generated and the reference set. A
worker that dies or cannot start raises :class:`WorkerStartError` (never a hang).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runner.result import atomic_write_bytes
from metrics.generation import (
    CRYSTALNN_FINGERPRINT_LENGTH,
    MAGPIE_FINGERPRINT_LENGTH,
    crystalnn_fingerprint,
    magpie_fingerprint,
)

LOG = logging.getLogger(__name__)

#: Stored in each cache file; a file with another version is recomputed. Bump it when the
#: fingerprint definition changes (featurizer preset, averaging, NaN handling).
FINGERPRINT_VERSION = "crystalnn-ops-mean+magpie-noimpute/1"
CACHE_PREFIX = "fingerprints-"
_FEATURIZER_MODULES = ("matminer.featurizers.site.fingerprint", "matminer.featurizers.composition.composite")


def _featurize_one(structure: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fingerprints of one structure: ``(structure_fp, composition_fp, failed)``; never raises."""
    s_fp = np.full(CRYSTALNN_FINGERPRINT_LENGTH, np.nan)
    c_fp = np.full(MAGPIE_FINGERPRINT_LENGTH, np.nan)
    failed = False
    try:
        c_fp = magpie_fingerprint(structure.composition)
    except Exception:  # noqa: BLE001 - any featurizer error marks the crystal as failed
        failed = True
    try:
        value = crystalnn_fingerprint(structure)
        if value.shape == (CRYSTALNN_FINGERPRINT_LENGTH,) and np.all(np.isfinite(value)):
            s_fp = value
        else:
            failed = True
    except Exception:  # noqa: BLE001
        failed = True
    return s_fp, c_fp, failed


def _resolve_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None (all cores); got {n_jobs!r}")
    return n_jobs


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # pymatgen and matminer (seconds to import) are imported once by the fork server (no
        # effect once it is running) and inherited by the workers. Not our own modules: the
        # server does not see the caller's sys.path (Python < 3.12), so it could preload another
        # checkout of mateval than the caller's; workers import ours (0.1 s) after taking the
        # caller's sys.path.
        ctx.set_forkserver_preload(list(_FEATURIZER_MODULES))
        return ctx
    return multiprocessing.get_context("spawn")


def _featurize_chunk(structures: list) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Worker task: :func:`_featurize_one` over a chunk, in order."""
    return [_featurize_one(s) for s in structures]


def _warm_worker() -> None:
    """Worker initializer: build both featurizers once, before the first task."""
    from metrics import generation

    generation._crystalnn_featurizer()
    generation._magpie_featurizer()


class WorkerStartError(RuntimeError):
    """A fingerprint worker process died or could not start (the pool is unusable)."""


_BROKEN_HINT = (
    "a fingerprint worker process died or could not start ({detail}). Workers are started with the "
    "'{method}' method, which imports the calling script's main module in every worker: a script that "
    "computes fingerprints (or scores generated crystals) must do so under `if __name__ == \"__main__\":`. "
    "Otherwise the worker may have run out of memory or been killed. Pass n_jobs=1 (mateval: --jobs 1) "
    "to compute fingerprints in this process."
)


class _Batch:
    """The chunk futures of one :meth:`FingerprintPool.submit` call."""

    def __init__(self, n: int, todo: list[int], futures: list, chunks: list[list[int]], what: str) -> None:
        self.n, self.todo, self.futures, self.chunks, self.what = n, todo, futures, chunks, what


class FingerprintPool:
    """Worker processes that compute fingerprints, reused across structure sets.

    One pool serves both the generated and the reference set of a scoring call: the fork server
    (which preloads pymatgen and matminer) starts once per Python process, the
    workers once per pool, and each worker builds the featurizers once. Work is sent in chunks of
    structures and the chunks of every submitted set are queued together, so no core idles at
    the end of one set while another waits.

    Start method: ``forkserver`` where the platform has it (Linux, macOS), else ``spawn``. Not
    ``fork``: a forked worker inherits the caller's threads (the telemetry sampler, BLAS pools, a
    notebook's torch/CUDA state) and can deadlock on a lock one of them held, a hang no timeout
    here could tell from slow work. The price is that each worker imports the caller's
    ``__main__`` module, so a script without an ``if __name__ == "__main__":`` guard re-runs in the
    worker and fails there. The pool is a :class:`concurrent.futures.ProcessPoolExecutor`, which
    notices a worker that dies (``multiprocessing.Pool`` would replace it for ever and never
    return); such a failure raises :class:`WorkerStartError` naming the likely cause.

    Args:
        n_jobs: worker processes; ``None``: ``os.cpu_count()``. 1: no processes, everything runs
            serially in the calling process.

    Raises:
        ValueError: if ``n_jobs`` is not a positive integer or None.

    Use as a context manager (``with FingerprintPool(2) as pool: ...``); :meth:`close` shuts the
    workers down. Workers start on the first :meth:`submit` that has work for them.
    """

    #: structures per chunk at most (a 5-atom perov_5 crystal takes ~0.06 s per fingerprint)
    MAX_CHUNK = 16

    def __init__(self, n_jobs: int | None = None) -> None:
        self.n_jobs = _resolve_jobs(n_jobs)
        self._executor = None
        self._method = None

    def __enter__(self) -> "FingerprintPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (cancelling queued chunks); the pool can be used again afterwards."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _start(self):
        if self._executor is None:
            from concurrent.futures import ProcessPoolExecutor

            ctx = _pool_context()
            self._method = ctx.get_start_method()
            self._executor = ProcessPoolExecutor(self.n_jobs, mp_context=ctx, initializer=_warm_worker)
        return self._executor

    def submit(self, structures: Sequence[Any], what: str = "fingerprinting crystals") -> _Batch:
        """Queue the fingerprints of ``structures``; collect them with :meth:`result`. Progress
        lines (:mod:`runner.progress`) name the work ``what``.

        ``None`` entries get NaN rows and are not sent. With ``n_jobs == 1`` or a single structure
        the work is done here and now.
        """
        from runner.progress import track

        structures = list(structures)
        todo = [i for i, s in enumerate(structures) if s is not None]
        if self.n_jobs <= 1 or len(todo) <= 1:
            results = [_featurize_one(structures[i]) for i in track(todo, what)]
            return _Batch(len(structures), todo, [results], [list(range(len(todo)))], what)
        size = max(1, min(self.MAX_CHUNK, math.ceil(len(todo) / (self.n_jobs * 4))))
        chunks = [list(range(k, min(k + size, len(todo)))) for k in range(0, len(todo), size)]
        executor = self._start()
        futures = []
        try:
            for chunk in chunks:
                futures.append(executor.submit(_featurize_chunk, [structures[todo[j]] for j in chunk]))
        except Exception as exc:  # BrokenProcessPool, or the fork server could not start
            self.close()
            raise WorkerStartError(_BROKEN_HINT.format(detail=f"{type(exc).__name__}: {exc}",
                                                       method=self._method)) from exc
        return _Batch(len(structures), todo, futures, chunks, what)

    def result(self, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
        """The arrays of a :meth:`submit` call: as :func:`compute_fingerprints` returns them.

        Raises:
            WorkerStartError: a worker process died or could not start.
        """
        from concurrent.futures.process import BrokenProcessPool

        from runner.progress import Progress

        # in parallel, the chunks of every submitted set run together: the clock starts here
        progress = None if len(batch.futures) == 1 and isinstance(batch.futures[0], list) else \
            Progress(batch.what, len(batch.todo))
        s_fps = np.full((batch.n, CRYSTALNN_FINGERPRINT_LENGTH), np.nan)
        c_fps = np.full((batch.n, MAGPIE_FINGERPRINT_LENGTH), np.nan)
        n_failed = 0
        for future, chunk in zip(batch.futures, batch.chunks):
            if isinstance(future, list):
                results = future
            else:
                try:
                    results = future.result()
                except BrokenProcessPool as exc:
                    self.close()
                    raise WorkerStartError(_BROKEN_HINT.format(detail=str(exc), method=self._method)) from exc
            for j, (s_fp, c_fp, failed) in zip(chunk, results):
                i = batch.todo[j]
                s_fps[i] = s_fp
                c_fps[i] = c_fp
                n_failed += bool(failed)
            if progress is not None:
                progress.update(len(chunk))
        if progress is not None:
            progress.close()
        if n_failed:
            LOG.warning("fingerprints failed for %d of %d structures (their rows are NaN)", n_failed, len(batch.todo))
        return s_fps, c_fps


def failed_rows(structure_fps: np.ndarray) -> np.ndarray:
    """Rows whose structure fingerprint is missing (``None`` input) or failed: bool, shape (n,)."""
    return ~np.isfinite(np.asarray(structure_fps, dtype=np.float64)).all(axis=1)


def compute_fingerprints(
    structures: Sequence[Any], n_jobs: int | None = None, pool: FingerprintPool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CrystalNN and Magpie fingerprints of every structure.

    Args:
        structures: pymatgen Structures; a ``None`` entry gets NaN rows (not counted as a failure).
        n_jobs: worker processes when no ``pool`` is given; ``None``: ``os.cpu_count()``; 1: serial
            in this process, no pool. A pool made here is closed before returning.
        pool: a :class:`FingerprintPool` to use (and leave running); ``n_jobs`` is then ignored.

    Returns:
        ``(structure_fps, composition_fps)`` of shapes ``(n, 61)`` and ``(n, 132)``, float64, in
        the order of ``structures``, bit for bit the same whatever the number of workers. A
        structure whose featurization raised has an all-NaN structure row (see
        :func:`failed_rows`); the failures are logged as one warning.

    Raises:
        ValueError: if ``n_jobs`` is not a positive integer or None.
        WorkerStartError: a worker process died or could not start (see :class:`FingerprintPool`).
    """
    if pool is not None:
        return pool.result(pool.submit(structures))
    with FingerprintPool(n_jobs) as own:
        return own.result(own.submit(structures))


def structures_key(structures: Sequence[Any]) -> str:
    """Content hash of a list of structures: hex SHA-256 over each ``Structure.as_dict()`` as JSON
    with sorted keys, in order, with the fingerprint definition version mixed in."""
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    digest.update(f"|n={len(structures)}|".encode())
    for s in structures:
        text = json.dumps(s.as_dict(), sort_keys=True, separators=(",", ":"), default=str)
        digest.update(hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()


def cache_path(cache_dir: Path | str, key: str) -> Path:
    """``<cache_dir>/fingerprints-<key>.npz``."""
    return Path(cache_dir) / f"{CACHE_PREFIX}{key}.npz"


def _load_cache(path: Path, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None (with a warning) when the file is unreadable or does not fit."""
    try:
        with np.load(path, allow_pickle=False) as data:
            version = str(data["version"])
            s_fps = np.array(data["structure"], dtype=np.float64)
            c_fps = np.array(data["composition"], dtype=np.float64)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"fingerprint cache {path} is unreadable ({type(exc).__name__}: {exc}); recomputing",
                      RuntimeWarning, stacklevel=3)
        return None
    expected = ((n, CRYSTALNN_FINGERPRINT_LENGTH), (n, MAGPIE_FINGERPRINT_LENGTH))
    if version != FINGERPRINT_VERSION or (s_fps.shape, c_fps.shape) != expected:
        warnings.warn(f"fingerprint cache {path} does not match (version {version!r}, shapes {s_fps.shape}, "
                      f"{c_fps.shape}; expected {FINGERPRINT_VERSION!r}, {expected}); recomputing",
                      RuntimeWarning, stacklevel=3)
        return None
    return s_fps, c_fps


def _write_cache(path: Path, s_fps: np.ndarray, c_fps: np.ndarray) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, version=np.array(FINGERPRINT_VERSION), structure=s_fps, composition=c_fps)
    atomic_write_bytes(path, buffer.getvalue())


def cached_reference_fingerprints(
    structures: Sequence[Any], cache_dir: Path | str | None, key: str | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, Path | None]:
    """Look up the reference set's fingerprints in the cache.

    Args:
        structures: the reference Structures.
        cache_dir: folder of the cache; ``None``: no cache.
        key: content hash naming the cache file ``<cache_dir>/fingerprints-<key>.npz``;
            ``None``: :func:`structures_key` of ``structures``.

    Returns:
        ``(arrays, path)``: ``arrays`` is ``(structure_fps (n, 61), composition_fps (n, 132))``
        on a hit, else ``None``; ``path`` is where :func:`store_reference_fingerprints` writes
        them (``None`` without a cache folder). A file that cannot be read, or whose version or
        shapes do not match, is a miss, with a ``RuntimeWarning``.

    Raises:
        ValueError: if ``key`` is not a plain file-name fragment.
    """
    if cache_dir is None:
        return None, None
    if key is None:
        key = structures_key(structures)
    if not key or any(ch in key for ch in "/\\\0") or key.startswith("."):
        raise ValueError(f"key must be a plain file-name fragment (e.g. a hex digest); got {key!r}")
    path = cache_path(cache_dir, key)
    if path.is_file():
        cached = _load_cache(path, len(structures))
        if cached is not None:
            return cached, path
    return None, path


def store_reference_fingerprints(path: Path | None, s_fps: np.ndarray, c_fps: np.ndarray) -> None:
    """Write the arrays to ``path`` (from :func:`cached_reference_fingerprints`) atomically; ``None``:
    nothing. Raises ``OSError`` if the file cannot be written."""
    if path is not None:
        _write_cache(Path(path), s_fps, c_fps)


def reference_fingerprints(
    structures: Sequence[Any], cache_dir: Path | str | None, key: str | None = None, n_jobs: int | None = None,
    pool: FingerprintPool | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fingerprints of the reference set, cached on disk.

    Args:
        structures: the reference Structures.
        cache_dir: folder of the cache (created if missing); ``None``: no cache, always compute.
        key: content hash naming the cache file ``<cache_dir>/fingerprints-<key>.npz``;
            ``None``: :func:`structures_key` of ``structures``.
        n_jobs, pool: as :func:`compute_fingerprints`.

    Returns:
        ``(structure_fps (n, 61), composition_fps (n, 132), cache_hit)``. A file that cannot be
        read, or whose version or shapes do not match, is recomputed and overwritten, with a
        ``RuntimeWarning``. Failed rows are NaN, as in :func:`compute_fingerprints`, and cached so.

    Raises:
        ValueError: if ``key`` is not a plain file-name fragment, or ``n_jobs`` is invalid.
        OSError: if the cache cannot be written.
        WorkerStartError: as :func:`compute_fingerprints`.
    """
    structures = list(structures)
    cached, path = cached_reference_fingerprints(structures, cache_dir, key)
    if cached is not None:
        return cached[0], cached[1], True
    s_fps, c_fps = compute_fingerprints(structures, n_jobs, pool)
    store_reference_fingerprints(path, s_fps, c_fps)
    return s_fps, c_fps, False
