"""Batching of ErnieDataset samples: pad to one length, flatten masked positions, pad predictions to a multiple of 8.

Contract (docs/DESIGN.md): `input_ids` / `token_type_ids` [B,S] int64, `attention_mask` [B,1,1,S] float32 (0 on real
tokens, -1e4 on padding), `masked_positions` [M] int32 flattened as `i*S + p`, `masked_lm_labels` [M,1] int64,
`next_sentence_labels` [B,1] int64. M is the number of predictions rounded up to a multiple of 8 (at least 8, so a
batch without predictions still has non-empty tensors); padding entries point at position 0 with label -1, which
the loss must ignore (REFERENCE §18.4).

Packed (`--pack_samples`, `collate_packed_pretraining_batch`): the same samples first-fit into fewer rows of S tokens
(`ernie1.data.packing`), each keeping its own [CLS] ... [SEP] ... [SEP]. `input_ids` / `token_type_ids` /
`position_ids` (restarting at 0 per sample) are [R,S], `attention_mask` is the block-diagonal [R,1,S,S],
`masked_positions` are re-based into the packed rows (`row*S + column`) in the samples' order, and
`sample_starts` [B] int32 is each sample's [CLS] as a flat `row*S + column` index, in the samples' order, for the
SOP head; `masked_lm_labels` and `next_sentence_labels` are those of the unpacked batch.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ernie1.data.packing import pack_lengths, packed_encoder_inputs

MASKED_MULTIPLE = 8
IGNORE_LABEL = -1
PADDING_MASK_VALUE = -1e4
# Order of the original's batch list (input_ids, segment_ids, input_mask, masked_lm_positions, masked_lm_labels,
# next_sentence_labels), for code that wants positional tensors.
BATCH_KEYS = (
    "input_ids",
    "token_type_ids",
    "attention_mask",
    "masked_positions",
    "masked_lm_labels",
    "next_sentence_labels",
)


def padded_prediction_count(num_predictions: int, multiple: int = MASKED_MULTIPLE) -> int:
    """`num_predictions` rounded up to a multiple of `multiple`, at least `multiple`."""
    return max(multiple, -(-num_predictions // multiple) * multiple)


def collate_pretraining_batch(
    samples: Sequence[Mapping[str, object]], pad_to: Optional[int] = None, pad_id: int = 0
) -> Dict[str, np.ndarray]:
    """Stack unpadded samples into the batch arrays of the module docstring (S = pad_to or the longest sample)."""
    if len(samples) == 0:
        raise ValueError("cannot collate an empty batch")
    lengths = [len(sample["input_ids"]) for sample in samples]
    seq_len = max(lengths) if pad_to is None else int(pad_to)
    if max(lengths) > seq_len:
        raise ValueError(f"a sample of {max(lengths)} tokens does not fit pad_to={seq_len}")
    batch_size = len(samples)
    input_ids = np.full((batch_size, seq_len), pad_id, dtype=np.int64)
    token_type_ids = np.zeros((batch_size, seq_len), dtype=np.int64)
    attention_mask = np.zeros((batch_size, 1, 1, seq_len), dtype=np.float32)
    next_sentence_labels = np.zeros((batch_size, 1), dtype=np.int64)
    positions, labels = [], []
    for row, (sample, length) in enumerate(zip(samples, lengths)):
        input_ids[row, :length] = sample["input_ids"]
        token_type_ids[row, :length] = sample["token_type_ids"]
        attention_mask[row, 0, 0, length:] = PADDING_MASK_VALUE
        next_sentence_labels[row, 0] = int(sample["sop_label"])
        positions.append(np.asarray(sample["masked_positions"], dtype=np.int64) + row * seq_len)
        labels.append(np.asarray(sample["masked_labels"], dtype=np.int64))
    masked_positions, masked_lm_labels = _padded_predictions(positions, labels)
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "masked_positions": masked_positions,
        "masked_lm_labels": masked_lm_labels,
        "next_sentence_labels": next_sentence_labels,
    }


def _padded_predictions(positions: Sequence[np.ndarray], labels: Sequence[np.ndarray]):
    """(masked_positions [M] int32, masked_lm_labels [M,1] int64): the flat positions and labels, padded to M."""
    flat_positions = np.concatenate(positions)
    count = padded_prediction_count(len(flat_positions))
    masked_positions = np.zeros(count, dtype=np.int32)
    masked_positions[: len(flat_positions)] = flat_positions
    masked_lm_labels = np.full((count, 1), IGNORE_LABEL, dtype=np.int64)
    masked_lm_labels[: len(flat_positions), 0] = np.concatenate(labels)
    return masked_positions, masked_lm_labels


def collate_packed_pretraining_batch(
    samples: Sequence[Mapping[str, object]], pad_to: int, pad_id: int = 0
) -> Dict[str, np.ndarray]:
    """The samples packed into as few rows of `pad_to` tokens as first-fit needs (the packed layout of the module
    docstring); a sample longer than `pad_to` is an error, none is ever split."""
    if len(samples) == 0:
        raise ValueError("cannot collate an empty batch")
    lengths = [len(sample["input_ids"]) for sample in samples]
    if max(lengths) > pad_to:
        raise ValueError(f"a sample of {max(lengths)} tokens does not fit pad_to={pad_to}")
    layout = pack_lengths(lengths, pad_to).widened(pad_to)
    tokens = {key: [sample[key] for sample in samples] for key in ("input_ids", "token_type_ids")}
    batch = packed_encoder_inputs(layout, tokens, {"input_ids": pad_id})
    sample_starts = layout.flat_starts()
    positions = [np.asarray(s["masked_positions"], dtype=np.int64) + start for s, start in zip(samples, sample_starts)]
    labels = [np.asarray(sample["masked_labels"], dtype=np.int64) for sample in samples]
    batch["masked_positions"], batch["masked_lm_labels"] = _padded_predictions(positions, labels)
    batch["next_sentence_labels"] = np.asarray([[int(s["sop_label"])] for s in samples], dtype=np.int64)
    batch["sample_starts"] = sample_starts.astype(np.int32)
    return batch


def to_trainer_inputs(batch: Mapping[str, np.ndarray]) -> Dict[str, object]:
    """The Trainer's dict: model inputs plus `labels=(masked_lm_labels, next_sentence_labels)` (REFERENCE §8)."""
    return {
        "input_ids": batch["input_ids"],
        "token_type_ids": batch["token_type_ids"],
        "attention_mask": batch["attention_mask"],
        "masked_positions": batch["masked_positions"],
        "labels": (batch["masked_lm_labels"], batch["next_sentence_labels"]),
    }


class CollateForPretraining:
    """Picklable `collate_fn` for DataLoader workers; `trainer_style=True` returns `to_trainer_inputs` dicts."""

    def __init__(self, pad_to: Optional[int] = None, pad_id: int = 0, trainer_style: bool = False):
        self.pad_to = pad_to
        self.pad_id = pad_id
        self.trainer_style = trainer_style

    def __call__(self, samples: Sequence[Mapping[str, object]]) -> Dict[str, object]:
        batch = collate_pretraining_batch(samples, self.pad_to, self.pad_id)
        return to_trainer_inputs(batch) if self.trainer_style else batch

    def __repr__(self) -> str:
        return f"CollateForPretraining(pad_to={self.pad_to}, pad_id={self.pad_id}, trainer_style={self.trainer_style})"
