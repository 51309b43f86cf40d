"""First-fit packing of sequence lengths into rows, and the layout's segment ids, positions, mask and readouts."""

from __future__ import annotations

import numpy as np
import pytest

from ernie1.data.packing import (
    MASK_VALUE,
    first_fit_rows,
    pack_lengths,
    packed_attention_mask,
    packed_encoder_inputs,
    packed_position_ids,
)


def test_module_docstring_toy_example():
    layout = pack_lengths([3, 4, 2], capacity=8)
    assert layout.segment_ids.tolist() == [[1, 1, 1, 2, 2, 2, 2], [1, 1, 0, 0, 0, 0, 0]]
    assert layout.starts.tolist() == [[0, 0], [0, 3], [1, 0]]
    assert packed_position_ids(layout.segment_ids).tolist() == [[0, 1, 2, 0, 1, 2, 3], [0, 1, 0, 0, 0, 0, 0]]
    assert first_fit_rows([3, 4, 2], 8) == [[0, 1], [2]]
    # Decreasing order matters: plain first fit in the callers' order would need 3 rows here.
    assert first_fit_rows([2, 5, 2, 4, 3], 8) == [[1, 4], [0, 2, 3]]


def test_first_fit_rows_respect_capacity_and_place_every_sequence_once():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(1, 33, rng.integers(1, 40)).tolist()
        rows = first_fit_rows(lengths, 32)
        assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in row) <= 32 for row in rows)
        # First-fit decreasing never needs more than 11/9 OPT + 1 rows; OPT >= total / capacity.
        assert len(rows) <= 11 / 9 * np.ceil(sum(lengths) / 32) + 1


def test_first_fit_rows_errors():
    with pytest.raises(ValueError, match="sequence 1 has 9 tokens; expected 1..8"):
        first_fit_rows([3, 9], 8)
    with pytest.raises(ValueError, match="sequence 0 has 0 tokens"):
        first_fit_rows([0], 8)
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        first_fit_rows([1], 0)


def slow_positions(segments):
    positions = np.zeros(segments.shape, dtype="int64")
    for row in range(segments.shape[0]):
        start = 0
        for col in range(segments.shape[1]):
            if col > 0 and segments[row, col] != segments[row, col - 1]:
                start = col
            positions[row, col] = col - start if segments[row, col] > 0 else 0
    return positions


def test_positions_and_mask_against_a_slow_reference():
    rng = np.random.default_rng(1)
    for _ in range(20):
        layout = pack_lengths(rng.integers(1, 20, rng.integers(1, 12)).tolist(), capacity=24)
        segments = layout.segment_ids
        np.testing.assert_array_equal(packed_position_ids(segments), slow_positions(segments))
        mask = packed_attention_mask(segments)
        for row in range(segments.shape[0]):
            for q in range(segments.shape[1]):
                for k in range(segments.shape[1]):
                    attends = segments[row, k] > 0 and segments[row, q] == segments[row, k]
                    assert mask[row, 0, q, k] == (0.0 if attends else MASK_VALUE)


def test_pack_then_unpack_gives_the_padded_to_longest_batch():
    rng = np.random.default_rng(2)
    sequences = [rng.integers(1, 100, n).tolist() for n in (5, 1, 9, 3, 7)]
    layout = pack_lengths([len(s) for s in sequences], capacity=10)
    packed = layout.pack(sequences)
    assert packed.shape == (layout.num_rows, layout.width) and layout.num_rows == 3
    padded = np.zeros((5, 9), dtype="int64")
    for row, values in enumerate(sequences):
        padded[row, : len(values)] = values
    np.testing.assert_array_equal(layout.unpack(packed), padded)
    features = np.stack([packed, -packed], axis=-1)  # trailing dims ride along: [rows, width, 2] -> [n, longest, 2]
    np.testing.assert_array_equal(layout.unpack(features), np.stack([padded, -padded], axis=-1))
    flat = packed.reshape(-1)[layout.token_index()]
    np.testing.assert_array_equal(np.where(padded > 0, flat, 0), padded)


def test_packed_encoder_inputs():
    layout = pack_lengths([2, 3], capacity=8)
    batch = packed_encoder_inputs(
        layout, {"input_ids": [[7, 8], [4, 5, 6]], "token_type_ids": [[0, 1], [0, 0, 1]]}, {}
    )
    assert batch["input_ids"].tolist() == [[7, 8, 4, 5, 6]]
    assert batch["token_type_ids"].tolist() == [[0, 1, 0, 0, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2]]
    assert batch["attention_mask"].shape == (1, 1, 5, 5) and batch["attention_mask"].dtype == np.float32
    with pytest.raises(ValueError, match="a sequence has 1 values, the layout 2"):
        layout.pack([[1], [1, 2, 3]])
