"""Matbench's evaluation protocol (Dunn et al., npj Comput. Mater. 6, 138 (2020)): 5-fold
cross-validation with ``sklearn.model_selection.KFold(n_splits=5, shuffle=True,
random_state=18012019)`` over the dataset's rows in file order, the score of each fold on its test
part, and mean ± standard deviation over the folds (``matbench.constants``: ``KFOLD_DEFAULT_KWARGS``;
``matbench.task.MatbenchTask.folds``).

Matbench hands the training part of a fold to the model whole; a model that needs a validation set
draws it from that part itself. mateval draws it with the run's seed (:func:`validation_split`), so
the test part of every fold is exactly Matbench's.
"""

from __future__ import annotations

import numpy as np

#: matbench.constants.KFOLD_DEFAULT_KWARGS
MATBENCH_KFOLD = {"n_splits": 5, "shuffle": True, "random_state": 18012019}


def folds(n_samples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Matbench's ``(train_indices, test_indices)`` of each of the 5 folds of ``n_samples`` rows.

    Returns:
        5 pairs of sorted int64 index arrays; the test parts partition ``range(n_samples)``.

    Raises:
        ValueError: fewer than 5 samples (sklearn's KFold needs one per fold).
    """
    from sklearn.model_selection import KFold

    if n_samples < MATBENCH_KFOLD["n_splits"]:
        raise ValueError(f"Matbench's 5 folds need at least 5 samples, got {n_samples}")
    splitter = KFold(**MATBENCH_KFOLD)
    return [(np.sort(train).astype(np.int64), np.sort(test).astype(np.int64))
            for train, test in splitter.split(np.arange(n_samples))]


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
