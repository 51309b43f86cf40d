"""Blending several corpora (prefixes) into one dataset by weight (REFERENCE §5)."""

from __future__ import annotations

import logging
import math
from typing import Any, Optional, Sequence

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.data import index_helpers

logger = logging.getLogger(__name__)

# Each corpus is asked for 0.5 % more than its share, so the interleaving never runs short (original constant).
BLEND_HEADROOM = 1.005
MAX_BLENDED_DATASETS = 255


def normalize_weights(weights: Sequence[float]) -> np.ndarray:
    """float64 weights summing to 1; every weight must be a positive finite number."""
    array = np.asarray(weights, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ToolkitError(f"--input_dir: blending weights must be positive numbers, got {list(weights)}")
    return array / array.sum()


def samples_per_dataset(num_samples: Sequence[int], weights: Sequence[float]) -> list[tuple[int, ...]]:
    """For each corpus, the (train, valid, test) counts to request: ceil(n * w * 1.005), w normalised."""
    normalized = normalize_weights(weights)
    return [tuple(int(math.ceil(count * weight * BLEND_HEADROOM)) for count in num_samples) for weight in normalized]


class BlendableDataset:
    """Interleaves `datasets` by `weights` (deterministic, no RNG): slot i -> (dataset, sample) of the helper's map.

    Its length is `size` (the requested count), cut short only if a corpus runs out; the original used the sum of
    the lengths, which could index past the end of a corpus whose whole-epoch map was shorter than its share.
    """

    def __init__(self, datasets: Sequence[Any], weights: Sequence[float], size: int, name: str = "train"):
        if not 1 <= len(datasets) <= MAX_BLENDED_DATASETS:
            raise ToolkitError(f"--input_dir: can blend 1 to {MAX_BLENDED_DATASETS} datasets, got {len(datasets)}")
        if len(weights) != len(datasets):
            raise ValueError(f"{len(datasets)} datasets but {len(weights)} weights")
        self.datasets = list(datasets)
        self.weights = normalize_weights(weights)
        self.name = name
        dataset_index, sample_index = index_helpers.build_blending_indices(self.weights, int(size))
        lengths = np.asarray([len(dataset) for dataset in self.datasets], dtype=np.int64)
        overflow = np.flatnonzero(sample_index >= lengths[dataset_index])
        if overflow.size:
            usable = int(overflow[0])
            logger.warning(
                "%s: blended dataset cut from %d to %d samples: a corpus has fewer samples than its weighted share",
                name,
                size,
                usable,
            )
            dataset_index, sample_index = dataset_index[:usable], sample_index[:usable]
        self.dataset_index = dataset_index
        self.dataset_sample_index = sample_index

    def __len__(self) -> int:
        return len(self.dataset_index)

    def __getitem__(self, index: int):
        dataset = self.datasets[self.dataset_index[index]]
        if hasattr(dataset, "build"):
            return self.build(index)[0]
        return dataset[int(self.dataset_sample_index[index])]

    def build(self, index: int, schedule_index: Optional[int] = None):
        """`ErnieDataset.build` of the sample slot `index` points to, placed on the masking schedule at slot `index`
        (the blend is read in order, so its own index, not the corpus's, says at which step a sample is read)."""
        dataset = self.datasets[self.dataset_index[index]]
        sample_index = int(self.dataset_sample_index[index])
        return dataset.build(sample_index, schedule_index=index if schedule_index is None else schedule_index)
