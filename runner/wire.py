"""The wire contract between the host (orchestrator, scoring) and the model stage (runner).

Both sides import this small module, and only this one, to agree on what a run directory holds:
the run spec the host writes (:class:`RunSpec`, ``run_spec.json``), the model inputs the host
prepares (``inputs/``), the files the model stage writes and the files the scoring stage adds.
It imports nothing beyond the standard library, so the host never imports the runner's entry
script (:mod:`runner.run`) and the runner never imports the orchestrator.

A run directory, once published::

    run_spec.json            the spec (host; the container's view on the Docker backend)
    inputs/                  what the model stage may read (host, before the model starts):
        task.json            the task as the model sees it and the dataset record
        train.jsonl          training samples with targets
        val.jsonl            validation samples with targets
        test.jsonl           test samples WITHOUT targets
    model_predictions.csv    the model's raw predictions (model stage; regression, classification, spectra)
    generated_structures.json  the generated crystals (model stage; generation)
    timeseries.csv           resource samples (model stage)
    run.log                  the log of both stages (host)
    result.json              the result (model stage, then completed by the scoring stage)
    predictions.csv          predictions beside the held-out targets (scoring stage)
    generated.cif / generated.csv   generated crystals and their properties (scoring stage)
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SPEC_FILE = "run_spec.json"
RESULT_FILE = "result.json"
LOG_FILE = "run.log"
TIMESERIES_FILE = "timeseries.csv"
INPUTS_DIR = "inputs"
TASK_FILE = "task.json"
SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl", "test": "test.jsonl"}
MODEL_PREDICTIONS_FILE = "model_predictions.csv"
GENERATED_STRUCTURES_FILE = "generated_structures.json"
PREDICTIONS_FILE = "predictions.csv"
GENERATED_CIF = "generated.cif"
GENERATED_CSV = "generated.csv"


@dataclass
class RunSpec:
    """What to run; written by the orchestrator as ``run_spec.json``.

    Attributes:
        run_id: unique id, also the run directory's name.
        model: model name (the folder name under ``images/``).
        model_dir: path of the model folder as seen by the runner.
        task: task name from the task catalogue (:data:`runner.tasks.TASKS`).
        seed: seed for ``random``, ``numpy`` and ``torch``.
        data_variant: ``"subset"`` (embedded) or ``"full"``.
        data_roots: directories searched for datasets, in order (host side: the prepare and scoring
            stages read them; the model stage gets none).
        profile: ``"bench"`` (manifest's bench hyperparameters) or ``"paper"``.
        overrides: hyperparameter overrides ``{name: value}``.
        max_samples: optional ``{split: n}`` truncation (smoke tests).
        sampling_interval_s: telemetry period in seconds.
        backend: ``local``, ``docker`` or ``slurm`` (recorded in the result).
        git_sha: mateval's git commit, from the orchestrator.
        probe_batch_size: samples at most in the FLOP-counting probe batch (fewer when they exceed runner.profiling.MAX_PROBE_ATOMS atoms).
        timeout_s: the wall-clock limit the orchestrator enforces (recorded only).
        num_samples: generation: crystals to generate (``None``: the task's default).
        cache_dir: where the scoring stage may cache reference-set fingerprints (``None``: no cache).
        n_jobs: processes for fingerprinting in the scoring stage (``None``: all cores).
        config_sha256: the orchestrator's content hash of the model folder and this configuration
            (recorded in the result; ``--resume`` matches on it).
        protocol: the evaluation protocol: ``"task"`` (the task's own split) or ``"matbench"``
            (Matbench's 5-fold cross-validation, :mod:`runner.protocols.matbench`).
        fold: with ``protocol="matbench"``: the fold, 0 to 4; ``None`` otherwise.
    """

    run_id: str
    model: str
    model_dir: str
    task: str
    seed: int = 0
    data_variant: str = "subset"
    data_roots: list[str] = field(default_factory=list)
    profile: str = "bench"
    overrides: dict[str, Any] = field(default_factory=dict)
    max_samples: dict[str, int] | None = None
    sampling_interval_s: float = 1.0
    backend: str = "local"
    git_sha: str | None = None
    probe_batch_size: int = 32
    timeout_s: float | None = None
    num_samples: int | None = None
    cache_dir: str | None = None
    n_jobs: int | None = None
    config_sha256: str | None = None
    protocol: str = "task"
    fold: int | None = None

    @classmethod
    def from_dict(cls, data: Any, source: str = "run spec") -> "RunSpec":
        """Build a spec from a parsed JSON object.

        Raises:
            ValueError: not a mapping, or unknown/missing fields (``source`` named).
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: invalid run spec: expected a JSON object, got {type(data).__name__}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{source}: invalid run spec: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> "RunSpec":
        """Read a spec file.

        Raises:
            ValueError: unreadable or non-strict JSON (``NaN``, ``Infinity``), or unknown/missing
                fields (file named).
        """
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValueError(f"{path}: invalid run spec: {exc}") from exc
        return cls.from_json(text, str(path))

    @classmethod
    def from_json(cls, text: str, source: str = "run spec") -> "RunSpec":
        """Build a spec from JSON text (as :meth:`to_json` writes it).

        Raises:
            ValueError: not strict JSON (``NaN``, ``Infinity`` included), or unknown/missing
                fields (``source`` named).
        """
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ValueError(f"{source}: invalid run spec: {exc}") from exc
        return cls.from_dict(data, source)

    def for_model(self) -> "RunSpec":
        """The spec as the model stage gets it: no data roots, no scoring cache, no scoring
        workers (the model stage reads ``inputs/`` only)."""
        from dataclasses import replace

        return replace(self, data_roots=[], cache_dir=None, n_jobs=None)

    def to_json(self) -> str:
        """The spec as JSON text (strict JSON: never ``NaN`` or ``Infinity``).

        Raises:
            ValueError: a field holds NaN or an infinity (the field is named); the host checks
                every number where it enters, so this is a bug, refused rather than written.
        """
        document = asdict(self)
        try:
            return json.dumps(document, indent=2, allow_nan=False) + "\n"
        except ValueError:
            fields = [name for name, value in document.items() if _not_finite(value)]
            raise ValueError(f"run spec {self.run_id}: field(s) {', '.join(fields)}: NaN or infinity "
                             "cannot be written as JSON") from None

    def save(self, path: Path) -> None:
        """Write the spec as JSON.

        Raises:
            ValueError: see :meth:`to_json` (nothing is written then).
        """
        Path(path).write_text(self.to_json())


def _not_finite(value: Any) -> bool:
    """``value`` is, or holds (in lists and mappings), a float NaN or infinity."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    return False


def _refuse_constant(name: str) -> Any:
    """``parse_constant`` of :func:`json.loads`: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def new_run_id(model: str, task: str, seed: int, fold: int | None = None) -> str:
    """``<UTC yyyymmddThhmmss>-<model>-<task>-s<seed>[-f<fold>]-<6 hex>``: unique, sortable by start
    time (``-f<fold>``: a Matbench fold)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{model}-{task}-s{seed}{'' if fold is None else f'-f{fold}'}-{secrets.token_hex(3)}"
