"""Matbench's folds (runner.protocols.matbench): sklearn's KFold with Matbench's seed, test parts
partitioning the rows, and a seeded validation split inside a fold's training part."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from runner.protocols.matbench import MATBENCH_KFOLD, folds, validation_split


def test_folds_are_matbench_kfold():
    n = 636  # matbench_jdft2d's size
    got = folds(n)
    expected = list(KFold(n_splits=5, shuffle=True, random_state=18012019).split(np.arange(n)))
    assert MATBENCH_KFOLD == {"n_splits": 5, "shuffle": True, "random_state": 18012019}
    assert len(got) == 5
    for (train, test), (e_train, e_test) in zip(got, expected):
        assert np.array_equal(test, np.sort(e_test)) and np.array_equal(train, np.sort(e_train))
        assert not set(train) & set(test)
    assert np.array_equal(np.sort(np.concatenate([t for _, t in got])), np.arange(n))
    with pytest.raises(ValueError, match="at least 5"):
        folds(4)


def test_validation_split_is_seeded_and_disjoint():
    train, _ = folds(100)[0]
    a, va = validation_split(train, 0.1, seed=3)
    b, vb = validation_split(train, 0.1, seed=3)
    assert np.array_equal(a, b) and np.array_equal(va, vb) and len(va) == 8
    assert not set(a) & set(va) and set(a) | set(va) == set(train)
    assert not np.array_equal(va, validation_split(train, 0.1, seed=4)[1])
    assert len(validation_split(train, 0.0, 0)[1]) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        validation_split(train, 1.0, 0)
