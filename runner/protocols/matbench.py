"""Matbench's evaluation protocol (Dunn et al., npj Comput. Mater. 6, 138 (2020)): 5-fold
cross-validation with ``sklearn.model_selection.KFold(n_splits=5, shuffle=True,
random_state=18012019)`` over the dataset's rows in file order, the score of each fold on its test
part, and mean ± standard deviation over the folds (``matbench.constants``: ``KFOLD_DEFAULT_KWARGS``;
``matbench.task.MatbenchTask.folds``).

Matbench hands the training part of a fold to the model whole; a model that needs a validation set
draws it from that part itself. mateval draws it with the run's seed (:func:`validation_split`), so
the test part of every fold is exactly Matbench's.

``mateval bench --protocol matbench`` (:mod:`orchestrator.plan`) makes one run per fold; the prepare
and scoring stages both call :func:`apply` from :func:`runner.prepare.load_task_data` (the one hook),
so both see the same fold. The pool is the task's train, val and test rows in that order
(:func:`pool`), or, when Matbench's own dataset file for the task lies in a data directory
(``<root>/matbench/<matbench task>.json.gz``, :data:`OFFICIAL_TASKS`), that file's rows with
Matbench's ids (:func:`read_official`, :func:`mbid`). Only regression and classification tasks
(:func:`check_protocol`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: matbench.constants.KFOLD_DEFAULT_KWARGS
MATBENCH_KFOLD = {"n_splits": 5, "shuffle": True, "random_state": 18012019}


def folds(n_samples: int, labels=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Matbench's ``(train_indices, test_indices)`` of each of the 5 folds of ``n_samples`` rows:
    ``KFold`` for regression, ``StratifiedKFold`` on the class labels for classification (Matbench's
    classification tasks; ``labels``: shape ``(n_samples,)``), both with :data:`MATBENCH_KFOLD`.
    For regression the test parts equal Matbench v0.1's published ``matbench_v0.1_validation.json``
    (checked for matbench_mp_e_form, matbench_mp_gap, matbench_perovskites and matbench_jdft2d).

    Returns:
        5 pairs of sorted int64 index arrays; the test parts partition ``range(n_samples)``.

    Raises:
        ValueError: fewer than 5 samples (sklearn's KFold needs one per fold), ``labels`` of
            another length, or a class with fewer than 5 members (sklearn's StratifiedKFold).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if n_samples < MATBENCH_KFOLD["n_splits"]:
        raise ValueError(f"Matbench's 5 folds need at least 5 samples, got {n_samples}")
    if labels is None:
        parts = KFold(**MATBENCH_KFOLD).split(np.arange(n_samples))
    else:
        labels = np.asarray(labels)
        if labels.shape != (n_samples,):
            raise ValueError(f"labels: expected shape ({n_samples},), got {labels.shape}")
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() < MATBENCH_KFOLD["n_splits"]:
            raise ValueError(f"Matbench's stratified 5 folds need at least 5 samples of each class, got {counts.min()}")
        parts = StratifiedKFold(**MATBENCH_KFOLD).split(np.zeros((n_samples, 1)), labels)
    return [(np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)) for train, test in parts]


def validation_split(train: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training indices into ``(train, validation)``: ``round(fraction * n)``
    indices (at least 1 when ``fraction > 0`` and ``n > 1``) drawn with ``numpy``'s
    ``default_rng(seed)``; both sorted.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    n = len(train)
    n_val = int(round(fraction * n))
    if fraction > 0 and n > 1:
        n_val = max(n_val, 1)
    picked = np.random.default_rng(seed).permutation(n)[:n_val]
    mask = np.zeros(n, dtype=bool)
    mask[picked] = True
    return np.sort(train[~mask]), np.sort(train[mask])


# --- the protocol applied to a run (the hook of runner.prepare.load_task_data) ----------------------

#: the protocols ``mateval bench --protocol`` accepts: ``task`` is the task's own split
PROTOCOLS = ("task", "matbench")
#: task types Matbench's protocol applies to (Matbench v0.1 has regression and classification only)
TASK_TYPES = ("regression", "classification")
#: Matbench v0.1's fold names (``matbench_v0.1_validation.json``: ``splits[task]["fold_k"]``)
FOLD_KEYS = tuple(f"fold_{k}" for k in range(MATBENCH_KFOLD["n_splits"]))
#: mateval task -> Matbench v0.1 task of the same quantity (target column, Matbench's unit):
#: used when ``<data root>/matbench/<matbench task>.json.gz`` exists (see :func:`official_file`)
OFFICIAL_TASKS = {
    "mp20_formation_energy": ("matbench_mp_e_form", "e_form"),   # eV/atom, Materials Project
    "mp20_is_metal": ("matbench_mp_is_metal", "is_metal"),       # True: metal (PBE gap 0)
}
OFFICIAL_DIR = "matbench"
#: the validation share of a fold's training part for a task without its own ``holdout_fraction``
DEFAULT_VAL_FRACTION = 0.1


class ProtocolError(ValueError):
    """The protocol cannot be applied (unknown protocol, wrong task type, bad fold); the message
    names the task, its type or the field."""


def check_protocol(protocol: str, task: str, task_type: str) -> None:
    """Refuse a protocol a task cannot be run with.

    Raises:
        ProtocolError: ``protocol`` not in :data:`PROTOCOLS`, or ``matbench`` for a task whose type
            is not regression or classification (task and type named).
    """
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if protocol == "matbench" and task_type not in TASK_TYPES:
        raise ProtocolError(f"--protocol matbench: task {task} is a {task_type} task; Matbench's 5-fold protocol "
                            f"applies to {' and '.join(TASK_TYPES)} tasks only")


def mbid(matbench_task: str, index: int, n_rows: int) -> str:
    """Matbench's id of row ``index`` (0-based) of a dataset of ``n_rows`` rows, as
    ``matbench.data_ops.load`` makes it: ``mb-mp-e-form-000001`` for row 0 of ``matbench_mp_e_form``."""
    digits = int(np.floor(np.log10(n_rows))) + 1
    return f"{matbench_task.replace('matbench', 'mb').replace('_', '-')}-{index + 1:0{digits}d}"


def official_file(task: str, data_roots) -> Path | None:
    """``<root>/matbench/<matbench task>.json.gz`` of the first data root that holds it, for a task
    of :data:`OFFICIAL_TASKS`; ``None`` otherwise."""

    if task not in OFFICIAL_TASKS:
        return None
    name = OFFICIAL_TASKS[task][0]
    for root in data_roots:
        candidate = Path(root) / OFFICIAL_DIR / f"{name}.json.gz"
        if candidate.is_file():
            return candidate
    return None


def read_official(path, task: str, task_type: str) -> list:
    """The rows of an official Matbench dataset file (matminer's ``matbench_*.json.gz``: pandas
    ``orient="split"`` JSON ``{"index": [...], "columns": ["structure", target], "data": [[structure
    dict, value], ...]}``) as :class:`runner.contract.Sample` objects in file order, ids as
    :func:`mbid`; classification targets ``True``/``False`` become 1/0.

    Raises:
        runner.datasets.DatasetError: unreadable file, missing columns, a bad structure (file and
            row named).
    """
    import gzip
    import json

    from pymatgen.core import Structure

    from runner.contract import Sample
    from runner.datasets import DatasetError

    name, target = OFFICIAL_TASKS[task]
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read Matbench's dataset file: {type(exc).__name__}: {exc}") from None
    if not isinstance(document, dict) or not all(k in document for k in ("index", "columns", "data")):
        raise DatasetError(f"{path}: expected pandas split JSON with 'index', 'columns' and 'data'")
    columns = list(document["columns"])
    if "structure" not in columns or target not in columns:
        raise DatasetError(f"{path}: columns {columns}: expected 'structure' and {target!r} ({name})")
    at_structure, at_target = columns.index("structure"), columns.index(target)
    index, rows = list(document["index"]), list(document["data"])
    if len(index) != len(rows):
        raise DatasetError(f"{path}: {len(index)} index entries but {len(rows)} data rows")
    samples = []
    for row_number, (i, row) in enumerate(zip(index, rows)):
        try:
            structure = Structure.from_dict(row[at_structure])
            value = row[at_target]
            value = int(bool(value)) if task_type == "classification" else float(value)
            samples.append(Sample(id=mbid(name, int(i), len(rows)), structure=structure, target=value))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(f"{path}: data row {row_number}: {type(exc).__name__}: {exc}") from None
    return samples


def pool(splits) -> list:
    """The samples of a loaded dataset pooled in a stable order: its ``train``, then ``val``, then
    ``test`` samples, each in the loader's (file) order.

    Raises:
        runner.datasets.DatasetError: a sample id occurs twice (Matbench keys predictions by id).
    """
    from runner.datasets import DatasetError

    pooled = [s for split in ("train", "val", "test") for s in splits.get(split, ())]
    seen: set = set()
    for sample in pooled:
        if sample.id in seen:
            raise DatasetError(f"sample id {sample.id!r} occurs twice in the pooled train+val+test rows")
        seen.add(sample.id)
    return pooled


def fold_splits(samples: list, fold: int, fraction: float, seed: int, task_type: str) -> dict[str, list]:
    """``{"train", "val", "test"}`` of fold ``fold`` (0-4) of ``samples``: test = Matbench's test part
    of the fold (:func:`folds`; stratified by the 0/1 target for classification), train/val = its
    training part split by :func:`validation_split` with ``fraction`` and the run's ``seed``; each in
    pool order.

    Raises:
        ProtocolError: ``fold`` not in 0..4.
        ValueError: as :func:`folds`.
    """
    if not 0 <= fold < MATBENCH_KFOLD["n_splits"]:
        raise ProtocolError(f"fold: expected 0 to {MATBENCH_KFOLD['n_splits'] - 1}, got {fold}")
    labels = [s.target for s in samples] if task_type == "classification" else None
    train, test = folds(len(samples), labels)[fold]
    train, val = validation_split(train, fraction, seed)
    return {"train": [samples[i] for i in train], "val": [samples[i] for i in val],
            "test": [samples[i] for i in test]}


def apply(task: str, task_type: str, dataset, fold: int, seed: int, fraction: float, data_roots,
          max_samples=None):
    """The run's dataset under Matbench's protocol: a new
    :class:`runner.datasets.LoadedDataset` whose splits are fold ``fold`` of the pooled rows (see
    :func:`pool`, :func:`fold_splits`), truncated to ``max_samples`` after the fold is drawn (so a
    truncated test split is a part of Matbench's). With Matbench's own file for the task
    (:func:`official_file`) its rows are the pool instead of ``dataset``'s (``dataset`` may then be
    ``None``).

    The returned dataset's ``protocol`` block goes into the result's ``dataset.protocol``.

    Raises:
        ProtocolError, runner.datasets.DatasetError: as :func:`check_protocol`, :func:`fold_splits`,
            :func:`read_official`, :func:`pool`; ``dataset`` is ``None`` without Matbench's file.
    """
    from runner.datasets import LoadedDataset
    from runner.datasets.base import file_sha256, truncate_splits

    check_protocol("matbench", task, task_type)
    official = official_file(task, data_roots)
    if official is not None:
        samples = read_official(official, task, task_type)
        name, variant, path = OFFICIAL_TASKS[task][0], "matbench", official.parent
        sha256 = {official.name: file_sha256(official)}
        source = f"the rows of Matbench's {official.name} in file order"
        notes = []
    elif dataset is None:
        raise ProtocolError(f"{task}: no dataset given and no Matbench file for it in the data directories")
    else:
        samples = pool(dataset.splits)
        name, variant, path, sha256 = dataset.name, dataset.variant, dataset.path, dict(dataset.sha256)
        source = (f"{dataset.name}'s train, val and test rows pooled in that order ({dataset.split_description}); "
                  "not Matbench's own dataset")
        notes = list(dataset.notes)
    splits = fold_splits(samples, fold, fraction, seed, task_type)
    notes += truncate_splits(splits, max_samples, name, "rows")
    kind = "StratifiedKFold" if task_type == "classification" else "KFold"
    description = (f"Matbench protocol fold {fold} of 5: test = the fold's test part of sklearn {kind}(n_splits=5, "
                   f"shuffle=True, random_state={MATBENCH_KFOLD['random_state']}) over {len(samples)} rows ({source}); "
                   f"train/val = the fold's training part split {1 - fraction:.0%}/{fraction:.0%} with numpy "
                   f"default_rng(run seed {seed})")
    return LoadedDataset(name=name, variant=variant, path=path, splits=splits, sha256=sha256,
                         split_description=description, notes=notes, protocol={"name": "matbench", "fold": int(fold), "n_folds": MATBENCH_KFOLD["n_splits"],
                       "pool_size": len(samples), "validation_fraction": float(fraction),
                       "matbench_task": OFFICIAL_TASKS[task][0] if official is not None else None,
                       "official_rows": official is not None, "source_dataset": dataset.name if dataset is not None else None})
