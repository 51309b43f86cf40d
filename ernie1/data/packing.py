"""Packing: several short sequences in one row of at most `capacity` tokens, with what the encoder needs to keep them
apart (block-diagonal additive mask, positions restarting per sequence) and to read each one back out.

Layout of a packed batch on a toy example (capacity 8, sequences a=3, b=4, c=2 tokens; first-fit decreasing places
b, then a beside it, then c on a new row; within a row sequences keep the callers' order; rows are as wide as the
fullest one, 7):

    row 0: a a a b b b b      segment_ids 1 1 1 2 2 2 2     positions 0 1 2 0 1 2 3
    row 1: c c . . . . .      segment_ids 1 1 0 0 0 0 0     positions 0 1 0 0 0 0 0

`PackedLayout.starts` is (row, column) of each sequence's first token in the callers' order: a=(0, 0), b=(0, 3),
c=(1, 0) -- the [CLS] of a classification example. `token_index` maps each sequence's j-th token to its flat index
`row * width + column`, so gathering from a [rows * width, ...] output gives the per-sequence [n, longest, ...]
layout an unpacked, padded-to-longest batch has.

Pure numpy; fine-tuning (ernie1/tasks) and the pretraining collate (ernie1/data/collate.py, `--pack_samples`)
share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence

import numpy as np

# The additive value the toolkit's collate and paddlenlp use for "do not attend".
MASK_VALUE = -1e4


def first_fit_rows(lengths: Sequence[int], capacity: int) -> List[List[int]]:
    """Indices of `lengths` grouped into rows of at most `capacity` tokens (first-fit decreasing, deterministic).

    Longest first, each into the first row with room; ties keep the callers' order, and each row lists its
    sequences in the callers' order. A sequence longer than `capacity` is an error (truncate before packing).
    """
    if capacity < 1:
        raise ValueError(f"first_fit_rows: capacity must be at least 1, got {capacity}")
    rows: List[List[int]] = []
    free: List[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -int(lengths[i])):
        length = int(lengths[index])
        if length < 1 or length > capacity:
            raise ValueError(f"first_fit_rows: sequence {index} has {length} tokens; expected 1..{capacity}")
        row = next((r for r, room in enumerate(free) if room >= length), len(rows))
        if row == len(rows):
            rows.append([])
            free.append(capacity)
        rows[row].append(index)
        free[row] -= length
    return [sorted(row) for row in rows]


@dataclass(frozen=True)
class PackedLayout:
    """Where each sequence sits in the packed rows (see the module docstring)."""

    lengths: np.ndarray  # [n] tokens per sequence
    starts: np.ndarray  # [n, 2] (row, column) of each sequence's first token
    segment_ids: np.ndarray  # [rows, width] 1, 2, ... per sequence within a row, 0 = padding

    @property
    def num_rows(self) -> int:
        return int(self.segment_ids.shape[0])

    @property
    def width(self) -> int:
        return int(self.segment_ids.shape[1])

    def flat_starts(self) -> np.ndarray:
        """[n] flat index (row * width + column) of each sequence's first token."""
        return (self.starts[:, 0] * self.width + self.starts[:, 1]).astype("int64")

    def widened(self, width: int) -> "PackedLayout":
        """The same placement in rows of `width` columns (at least the fullest row's), padding on the right."""
        if width < self.width:
            raise ValueError(f"PackedLayout.widened: {width} columns cannot hold rows of {self.width} tokens")
        segment_ids = np.zeros((self.num_rows, width), dtype=self.segment_ids.dtype)
        segment_ids[:, : self.width] = self.segment_ids
        return PackedLayout(lengths=self.lengths, starts=self.starts, segment_ids=segment_ids)

    def token_index(self) -> np.ndarray:
        """[n, longest] flat index (row * width + column) of each sequence's tokens; 0 past a sequence's end."""
        longest = int(self.lengths.max()) if self.lengths.size else 0
        offsets = np.arange(longest)[None, :]
        flat = (self.starts[:, :1] * self.width + self.starts[:, 1:]) + offsets
        return np.where(offsets < self.lengths[:, None], flat, 0).astype("int64")

    def pack(self, sequences: Sequence[Sequence[int]], pad_value: int = 0, dtype: str = "int64") -> np.ndarray:
        """[rows, width] array of `sequences` (one per packed sequence, each of its length) placed by the layout."""
        out = np.full((self.num_rows, self.width), pad_value, dtype=dtype)
        for (row, start), length, values in zip(self.starts, self.lengths, sequences):
            if len(values) != length:
                raise ValueError(f"PackedLayout.pack: a sequence has {len(values)} values, the layout {length}")
            out[row, start : start + length] = values
        return out

    def unpack(self, packed: np.ndarray, pad_value: int = 0) -> np.ndarray:
        """[n, longest, ...] from a [rows, width, ...] array: the padded-to-longest layout of an unpacked batch."""
        packed = np.asarray(packed)
        flat = packed.reshape((self.num_rows * self.width,) + packed.shape[2:])
        out = flat[self.token_index()]
        valid = np.arange(out.shape[1])[None, :] < self.lengths[:, None]
        return np.where(valid.reshape(valid.shape + (1,) * (out.ndim - 2)), out, pad_value)


def pack_lengths(lengths: Sequence[int], capacity: int) -> PackedLayout:
    """The layout of `lengths` packed into rows of at most `capacity` tokens, as wide as the fullest row."""
    lengths_array = np.asarray([int(length) for length in lengths], dtype="int64")
    rows = first_fit_rows(lengths_array, capacity)
    width = max((int(lengths_array[row].sum()) for row in rows), default=0)
    starts = np.zeros((len(lengths_array), 2), dtype="int64")
    segment_ids = np.zeros((len(rows), width), dtype="int64")
    for row, members in enumerate(rows):
        column = 0
        for segment, index in enumerate(members, start=1):
            starts[index] = (row, column)
            segment_ids[row, column : column + lengths_array[index]] = segment
            column += int(lengths_array[index])
    return PackedLayout(lengths=lengths_array, starts=starts, segment_ids=segment_ids)


def packed_attention_mask(segment_ids, dtype: str = "float32", mask_value: float = MASK_VALUE) -> np.ndarray:
    """[B,1,S,S] additive block-diagonal mask from [B,S] segment ids (1, 2, ... per packed sequence, 0 = padding).

    A token attends to the tokens of its own sequence only; padding keys are masked for everyone. Padding query
    rows see only masked keys (their outputs are meaningless and must carry label -1, as padding does today).
    """
    segments = np.asarray(segment_ids)
    if segments.ndim != 2:
        raise ValueError(f"packed_attention_mask: segment_ids must be [batch, seq], got shape {segments.shape}")
    same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
    return np.where(same, 0.0, mask_value).astype(dtype)[:, None, :, :]


def packed_position_ids(segment_ids) -> np.ndarray:
    """[B,S] int64 positions restarting at 0 for every packed sequence (padding gets 0)."""
    segments = np.asarray(segment_ids)
    if segments.ndim != 2:
        raise ValueError(f"packed_position_ids: segment_ids must be [batch, seq], got shape {segments.shape}")
    columns = np.broadcast_to(np.arange(segments.shape[1]), segments.shape)
    starts_here = np.ones(segments.shape, dtype=bool)
    starts_here[:, 1:] = segments[:, 1:] != segments[:, :-1]
    segment_start = np.maximum.accumulate(np.where(starts_here, columns, 0), axis=1)
    return np.where(segments > 0, columns - segment_start, 0).astype("int64")


def packed_encoder_inputs(
    layout: PackedLayout, sequences: Mapping[str, Sequence[Sequence[int]]], pad_values: Mapping[str, int]
) -> Dict[str, np.ndarray]:
    """Packed [rows, width] arrays of each per-token key in `sequences`, plus `position_ids` and `attention_mask`."""
    batch = {key: layout.pack(values, pad_value=pad_values.get(key, 0)) for key, values in sequences.items()}
    batch["position_ids"] = packed_position_ids(layout.segment_ids)
    batch["attention_mask"] = packed_attention_mask(layout.segment_ids)
    return batch
