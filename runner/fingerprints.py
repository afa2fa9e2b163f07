"""CrystalNN and Magpie fingerprints of many crystals: parallel computation and an on-disk cache.

The fingerprints themselves are defined in :mod:`metrics.generation`
(:func:`~metrics.generation.crystalnn_fingerprint`, 61 numbers, and
:func:`~metrics.generation.magpie_fingerprint`, 132 numbers); this module only runs them over a
list of structures, in a process pool, and caches the reference set's fingerprints.

Failures: when the CrystalNN (or Magpie) featurization of a structure raises, or the structure
fingerprint is not finite, that crystal's structure row is all NaN (and so is its composition row
when Magpie raised). :func:`failed_rows` finds those rows; the generation scorer treats such a
crystal as structurally invalid for coverage (CDVAE does the same: "counts crystal as invalid if
fingerprint cannot be constructed").

Processes: ``n_jobs`` worker processes from the ``forkserver`` start method where the platform has
it (``spawn`` elsewhere), so that workers never inherit the parent's threads or CUDA state; the
fork server preloads this module (pymatgen and matminer), so the import cost is paid once per
Python process.
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
        # imported once by the fork server (no effect once it is running), inherited by workers
        ctx.set_forkserver_preload([__name__, *_FEATURIZER_MODULES])
        return ctx
    return multiprocessing.get_context("spawn")


def failed_rows(structure_fps: np.ndarray) -> np.ndarray:
    """Rows whose structure fingerprint is missing (``None`` input) or failed: bool, shape (n,)."""
    return ~np.isfinite(np.asarray(structure_fps, dtype=np.float64)).all(axis=1)


def compute_fingerprints(structures: Sequence[Any], n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CrystalNN and Magpie fingerprints of every structure.

    Args:
        structures: pymatgen Structures; a ``None`` entry gets NaN rows (not counted as a failure).
        n_jobs: worker processes; ``None``: ``os.cpu_count()``; 1: serial in this process, no
            pool. Never more workers than structures.

    Returns:
        ``(structure_fps, composition_fps)`` of shapes ``(n, 61)`` and ``(n, 132)``, float64, in
        the order of ``structures``. A structure whose featurization raised has an all-NaN
        structure row (see :func:`failed_rows`); the failures are logged as one warning.

    Raises:
        ValueError: if ``n_jobs`` is not a positive integer or None.
    """
    structures = list(structures)
    jobs = _resolve_jobs(n_jobs)
    n = len(structures)
    s_fps = np.full((n, CRYSTALNN_FINGERPRINT_LENGTH), np.nan)
    c_fps = np.full((n, MAGPIE_FINGERPRINT_LENGTH), np.nan)
    todo = [i for i, s in enumerate(structures) if s is not None]
    work = [structures[i] for i in todo]
    workers = min(jobs, len(work))
    if workers <= 1:
        results = [_featurize_one(s) for s in work]
    else:
        chunksize = max(1, math.ceil(len(work) / (workers * 4)))
        with _pool_context().Pool(workers) as pool:
            results = pool.map(_featurize_one, work, chunksize=chunksize)
    n_failed = 0
    for i, (s_fp, c_fp, failed) in zip(todo, results):
        s_fps[i] = s_fp
        c_fps[i] = c_fp
        n_failed += bool(failed)
    if n_failed:
        LOG.warning("fingerprints failed for %d of %d structures (their rows are NaN)", n_failed, len(work))
    return s_fps, c_fps


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


def reference_fingerprints(
    structures: Sequence[Any], cache_dir: Path | str | None, key: str | None = None, n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fingerprints of the reference set, cached on disk.

    Args:
        structures: the reference Structures.
        cache_dir: folder of the cache (created if missing); ``None``: no cache, always compute.
        key: content hash naming the cache file ``<cache_dir>/fingerprints-<key>.npz``;
            ``None``: :func:`structures_key` of ``structures``.
        n_jobs: as :func:`compute_fingerprints`.

    Returns:
        ``(structure_fps (n, 61), composition_fps (n, 132), cache_hit)``. A file that cannot be
        read, or whose version or shapes do not match, is recomputed and overwritten, with a
        ``RuntimeWarning``. Failed rows are NaN, as in :func:`compute_fingerprints`, and cached so.

    Raises:
        ValueError: if ``key`` is not a plain file-name fragment, or ``n_jobs`` is invalid.
        OSError: if the cache cannot be written.
    """
    structures = list(structures)
    if cache_dir is None:
        s_fps, c_fps = compute_fingerprints(structures, n_jobs)
        return s_fps, c_fps, False
    if key is None:
        key = structures_key(structures)
    if not key or any(ch in key for ch in "/\\\0") or key.startswith("."):
        raise ValueError(f"key must be a plain file-name fragment (e.g. a hex digest); got {key!r}")
    path = cache_path(cache_dir, key)
    if path.is_file():
        cached = _load_cache(path, len(structures))
        if cached is not None:
            return cached[0], cached[1], True
    s_fps, c_fps = compute_fingerprints(structures, n_jobs)
    _write_cache(path, s_fps, c_fps)
    return s_fps, c_fps, False
