"""Adapters: turn a modality's raw input into tensors and per-element errors back."""

from genad.data.image import ImageAdapter
from genad.data.labels import check_labels
from genad.data.tabular import TabularAdapter, read_table

__all__ = ["TabularAdapter", "ImageAdapter", "read_table", "check_labels"]
