"""Blending several corpora by weight (REFERENCE §5): requested counts, interleaving, the builder end to end."""

import logging

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data.blending import BlendableDataset, normalize_weights, samples_per_dataset
from ernie1.data.builder import build_train_valid_test_datasets
from ernie1.data.dataset_config import ErnieDatasetConfig
from ernie1.data.masking import MaskingVocab
from tests.ernie1.data.test_builder import write_corpus


def test_samples_per_dataset_adds_half_a_percent_headroom():
    assert samples_per_dataset((1000, 30, 0), [3, 1]) == [(754, 23, 0), (252, 8, 0)]
    assert samples_per_dataset((1, 1, 1), [1, 1]) == [(1, 1, 1), (1, 1, 1)]


def test_weights_must_be_positive():
    np.testing.assert_allclose(normalize_weights([2, 6]), [0.25, 0.75])
    with pytest.raises(ToolkitError, match=r"^--input_dir: blending weights must be positive numbers, got \[1, 0\]$"):
        normalize_weights([1, 0])


def test_blendable_dataset_interleaves_by_weight():
    first, second = [f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)]
    blended = BlendableDataset([first, second], [2.0, 1.0], size=9)
    assert [blended[i] for i in range(len(blended))] == ["a0", "b0", "a1", "a2", "b1", "a3", "a4", "b2", "a5"]
    assert blended.dataset_index.dtype == np.uint8 and blended.dataset_sample_index.dtype == np.int64


def test_blendable_dataset_stops_before_a_corpus_runs_out(caplog):
    with caplog.at_level(logging.WARNING, logger="ernie1"):
        blended = BlendableDataset([["a0", "a1"], [f"b{i}" for i in range(50)]], [0.5, 0.5], size=20, name="valid")
    assert [blended[i] for i in range(len(blended))] == ["a0", "b0", "a1", "b1"]
    assert [r.getMessage() for r in caplog.records] == [
        "valid: blended dataset cut from 20 to 4 samples: a corpus has fewer samples than its weighted share"
    ]


def test_builder_blends_weighted_prefixes(tmp_path, vocab_path):
    vocab = MaskingVocab.from_vocab_file(str(vocab_path))
    big = write_corpus(tmp_path, "big", [3] * 60, seed=1)
    small = write_corpus(tmp_path, "small", [2, 4] * 15, seed=2)
    config = ErnieDatasetConfig(input_dir=f"3 {big} 1 {small}", max_seq_length=64, split="9,1")
    train, valid, test = build_train_valid_test_datasets(config, vocab, (40, 8, 0))
    assert test is None
    assert isinstance(train, BlendableDataset) and len(train) == 40 and len(valid) == 8
    assert np.bincount(train.dataset_index).tolist() == [30, 10]
    for index in (0, 1, 7, 39):
        corpus, sample = train.dataset_index[index], train.dataset_sample_index[index]
        expected = train.datasets[corpus][int(sample)]
        for key in ("input_ids", "masked_positions", "masked_labels"):
            np.testing.assert_array_equal(train[index][key], expected[key])
    # Each corpus was asked for its share plus 0.5 %: ceil(40 * 0.75 * 1.005) = 31 and ceil(40 * 0.25 * 1.005) = 11.
    assert len(train.datasets[0]) >= 31 and len(train.datasets[1]) >= 11


def test_directory_of_prefixes_blends_with_equal_weights(tmp_path, vocab_path):
    vocab = MaskingVocab.from_vocab_file(str(vocab_path))
    write_corpus(tmp_path, "part_a", [3] * 20, seed=3)
    write_corpus(tmp_path, "part_b", [3] * 20, seed=4)
    config = ErnieDatasetConfig(input_dir=str(tmp_path), max_seq_length=64, split="1")
    train, valid, test = build_train_valid_test_datasets(config, vocab, (10, 0, 0))
    assert valid is None and test is None
    assert len(train) == 10 and train.dataset_index.tolist() == [0, 1] * 5
