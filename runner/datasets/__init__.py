"""Dataset loaders. Each returns a :class:`runner.datasets.base.LoadedDataset`."""

from runner.datasets.base import DatasetError, LoadedDataset, file_sha256, find_dataset_dir
from runner.datasets import cdvae, deepmd_water, mlearn, petretto, qm9  # noqa: E402 (after base, which the loaders import)

__all__ = ["DatasetError", "LoadedDataset", "file_sha256", "find_dataset_dir", "cdvae", "deepmd_water", "mlearn", "petretto", "qm9"]
