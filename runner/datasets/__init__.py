"""Dataset loaders. Each returns a :class:`runner.datasets.base.LoadedDataset`."""

from runner.datasets.base import DatasetError, LoadedDataset, file_sha256, find_dataset_dir

__all__ = ["DatasetError", "LoadedDataset", "file_sha256", "find_dataset_dir"]
