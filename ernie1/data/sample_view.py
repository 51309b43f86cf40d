"""A readable view of one pretraining sample: tokens with masked runs as `⟦original ⇒ model input⟧` (inspect_samples)."""

from __future__ import annotations

from typing import List, Mapping

import numpy as np

from ernie1.data.masking import MaskingVocab


def render_sample(sample: Mapping[str, object], vocab: MaskingVocab) -> str:
    """Tokens of one sample, masked runs as `⟦original ⇒ model input⟧`, [SEP] on its own."""
    input_ids = np.asarray(sample["input_ids"])
    original = input_ids.copy()
    positions = np.asarray(sample["masked_positions"], dtype=np.int64)
    original[positions] = np.asarray(sample["masked_labels"])
    masked = np.zeros(len(input_ids), dtype=bool)
    masked[positions] = True
    shown = vocab.decode(input_ids)
    truth = vocab.decode(original)
    pieces: List[str] = []
    position = 0
    while position < len(input_ids):
        if not masked[position]:
            pieces.append(truth[position])
            position += 1
            continue
        end = position
        while end < len(input_ids) and masked[end]:
            end += 1
        pieces.append(f"⟦{' '.join(truth[position:end])} ⇒ {' '.join(shown[position:end])}⟧")
        position = end
    return " ".join(pieces)


def describe_sample(index: int, split: str, sample: Mapping[str, object], vocab: MaskingVocab) -> str:
    """A header line (index, level, SOP label, sizes) and the rendered tokens."""
    sop = int(np.asarray(sample["sop_label"]))
    input_ids = np.asarray(sample["input_ids"])
    if not np.any(np.asarray(sample["token_type_ids"])):
        order = "segment A only"
    else:
        order = "swapped: B precedes A in the text" if sop else "A precedes B in the text"
    length = len(input_ids)
    predicted = len(np.asarray(sample["masked_positions"]))
    header = (
        f"--- {split} sample {index}: masking_level={sample['masking_level']} sop_label={sop} ({order}), "
        f"{length} tokens, {predicted} predicted"
    )
    return header + "\n" + render_sample(sample, vocab)
