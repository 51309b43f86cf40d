import pickle

import numpy as np
import pytest

from ernie1.data.collate import (
    BATCH_KEYS,
    CollateForPretraining,
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
