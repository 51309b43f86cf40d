import pickle

import numpy as np
import pytest

from ernie1.data.collate import (
    BATCH_KEYS,
    CollateForPretraining,
    collate_packed_pretraining_batch,
    collate_pretraining_batch,
    padded_prediction_count,
    to_trainer_inputs,
)


def sample(ids, types, positions, labels, sop):
    return {
        "input_ids": np.array(ids, np.int64),
        "token_type_ids": np.array(types, np.int64),
        "masked_positions": np.array(positions, np.int64),
        "masked_labels": np.array(labels, np.int64),
        "sop_label": np.array(sop, np.int64),
        "masking_level": "word",
    }


BATCH = [
    sample([1, 5, 6, 2, 7, 2], [0, 0, 0, 0, 1, 1], [1, 4], [50, 70], 1),
    sample([1, 8, 2], [0, 0, 0], [1], [80], 0),
    sample([1, 9, 9, 9, 2], [0, 0, 0, 0, 0], [], [], 0),
]


def test_collate_values():
    batch = collate_pretraining_batch(BATCH, pad_id=0)
    assert list(batch) == list(BATCH_KEYS)
    np.testing.assert_array_equal(batch["input_ids"], [[1, 5, 6, 2, 7, 2], [1, 8, 2, 0, 0, 0], [1, 9, 9, 9, 2, 0]])
    np.testing.assert_array_equal(
        batch["token_type_ids"], [[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]
    )
    assert batch["attention_mask"].shape == (3, 1, 1, 6) and batch["attention_mask"].dtype == np.float32
    np.testing.assert_array_equal(
        batch["attention_mask"][:, 0, 0], [[0] * 6, [0, 0, 0, -1e4, -1e4, -1e4], [0, 0, 0, 0, 0, -1e4]]
    )
    assert batch["masked_positions"].dtype == np.int32
    assert batch["masked_positions"].tolist() == [1, 4, 7, 0, 0, 0, 0, 0]  # 1*6 + 1 = 7
    assert batch["masked_lm_labels"].shape == (8, 1) and batch["masked_lm_labels"].dtype == np.int64
    assert batch["masked_lm_labels"][:, 0].tolist() == [50, 70, 80, -1, -1, -1, -1, -1]
    assert batch["next_sentence_labels"].tolist() == [[1], [0], [0]]
    assert batch["next_sentence_labels"].dtype == np.int64
    # The flattened positions address the original tokens' slots in the padded [B,S] layout.
    assert batch["input_ids"].reshape(-1)[[1, 4, 7]].tolist() == [5, 7, 8]


def test_pad_to_and_pad_id():
    batch = collate_pretraining_batch(BATCH, pad_to=10, pad_id=3)
    assert batch["input_ids"].shape == (3, 10)
    assert batch["input_ids"][1].tolist() == [1, 8, 2] + [3] * 7
    assert batch["masked_positions"].tolist()[:3] == [1, 4, 11]
    with pytest.raises(ValueError, match="a sample of 6 tokens does not fit pad_to=5"):
        collate_pretraining_batch(BATCH, pad_to=5)


def test_prediction_count_rounding():
    assert [padded_prediction_count(n) for n in (0, 1, 8, 9, 16, 17)] == [8, 8, 8, 16, 16, 24]
    many = [sample([1] * 20, [0] * 20, list(range(1, 10)), list(range(9)), 0)]
    batch = collate_pretraining_batch(many)
    assert batch["masked_positions"].shape == (16,)
    assert batch["masked_lm_labels"][:, 0].tolist() == list(range(9)) + [-1] * 7


def test_callable_is_picklable_and_trainer_style():
    collate = pickle.loads(pickle.dumps(CollateForPretraining(pad_to=8, pad_id=0, trainer_style=True)))
    inputs = collate(BATCH)
    assert list(inputs) == ["input_ids", "token_type_ids", "attention_mask", "masked_positions", "labels"]
    masked_lm_labels, next_sentence_labels = inputs["labels"]
    assert masked_lm_labels[:3, 0].tolist() == [50, 70, 80]
    assert next_sentence_labels.tolist() == [[1], [0], [0]]
    assert inputs["input_ids"].shape == (3, 8)
    plain = CollateForPretraining()(BATCH)
    assert to_trainer_inputs(plain)["masked_positions"].tolist() == plain["masked_positions"].tolist()
    assert plain["input_ids"].shape == (3, 6)


def test_packed_collate_values():
    # Lengths 6, 3, 5 in rows of 9: first-fit decreasing puts 6 and 3 on row 0, 5 on row 1.
    batch = collate_packed_pretraining_batch(BATCH, pad_to=9, pad_id=0)
    np.testing.assert_array_equal(batch["input_ids"], [[1, 5, 6, 2, 7, 2, 1, 8, 2], [1, 9, 9, 9, 2, 0, 0, 0, 0]])
    np.testing.assert_array_equal(batch["token_type_ids"][0], [0, 0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch["position_ids"], [[0, 1, 2, 3, 4, 5, 0, 1, 2], [0, 1, 2, 3, 4, 0, 0, 0, 0]])
    assert batch["attention_mask"].shape == (2, 1, 9, 9) and batch["attention_mask"].dtype == np.float32
    # Sample 1 (row 0, columns 6-8) attends to itself only; sample 0 never sees it.
    np.testing.assert_array_equal(batch["attention_mask"][0, 0, 7], [-1e4] * 6 + [0] * 3)
    np.testing.assert_array_equal(batch["attention_mask"][0, 0, 0], [0] * 6 + [-1e4] * 3)
    np.testing.assert_array_equal(batch["attention_mask"][1, 0, 0], [0] * 5 + [-1e4] * 4)
    assert batch["sample_starts"].tolist() == [0, 6, 9] and batch["sample_starts"].dtype == np.int32
    # Re-based into the packed rows, in the samples' order: sample 1's position 1 is column 7 of row 0.
    assert batch["masked_positions"].tolist() == [1, 4, 7, 0, 0, 0, 0, 0]
    assert batch["masked_lm_labels"][:, 0].tolist() == [50, 70, 80, -1, -1, -1, -1, -1]
    assert batch["next_sentence_labels"].tolist() == [[1], [0], [0]]
    assert batch["input_ids"].reshape(-1)[[1, 4, 7]].tolist() == [5, 7, 8]


def test_packed_collate_respects_max_seq_len_and_never_splits_a_sample():
    rng = np.random.default_rng(3)
    for _ in range(30):
        lengths = rng.integers(3, 33, size=int(rng.integers(1, 12)))
        samples = [
            sample([1] + [i + 10] * (n - 2) + [2], [0] * n, [1] if n > 2 else [], [i] if n > 2 else [], i % 2)
            for i, n in enumerate(lengths)
        ]
        batch = collate_packed_pretraining_batch(samples, pad_to=32)
        assert batch["input_ids"].shape[1] == 32 and batch["input_ids"].shape[0] <= len(samples)
        flat, flat_positions = batch["input_ids"].reshape(-1), batch["position_ids"].reshape(-1)
        for i, (start, n) in enumerate(zip(batch["sample_starts"], lengths)):
            # Each sample lies whole and in order inside one row, positions 0..n-1.
            assert start % 32 + n <= 32
            assert flat[start : start + n].tolist() == samples[i]["input_ids"].tolist()
            assert flat_positions[start : start + n].tolist() == list(range(n))
        assert (batch["input_ids"] != 0).sum() == lengths.sum()
    with pytest.raises(ValueError, match="a sample of 6 tokens does not fit pad_to=5"):
        collate_packed_pretraining_batch(BATCH, pad_to=5)
