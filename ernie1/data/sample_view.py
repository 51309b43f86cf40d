"""A readable view of one pretraining sample: masked runs as `⟦original ⇒ model input⟧` (inspect_samples).

At phrase/entity level the knowledge spans masked whole are their own runs, labelled with their kind:
`⟦entity: 湖 南 省 ⇒ [MASK] [MASK] 省⟧`; unlabelled runs are whole-word (or char) n-grams.
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ernie1.data.dataset_config import KNOWLEDGE_LEVELS
from ernie1.data.masking import MaskedSample, MaskingVocab


def _runs(masked: np.ndarray, knowledge: Sequence[Tuple[int, int]]) -> List[Tuple[int, int, bool]]:
    """(start, end, is_knowledge) of the masked runs in order: each knowledge span one run, the rest contiguous."""
    is_span_start = {start: end for start, end in knowledge}
    runs: List[Tuple[int, int, bool]] = []
    position = 0
    while position < len(masked):
        if position in is_span_start:
            runs.append((position, is_span_start[position], True))
            position = is_span_start[position]
        elif masked[position]:
            end = position + 1
            while end < len(masked) and masked[end] and end not in is_span_start:
                end += 1
            runs.append((position, end, False))
            position = end
        else:
            position += 1
    return runs


def render_sample(sample: Mapping[str, object], vocab: MaskingVocab, details: Optional[MaskedSample] = None) -> str:
    """Tokens of one sample, masked runs as `⟦original ⇒ model input⟧` (knowledge spans labelled, with `details`)."""
    input_ids = np.asarray(sample["input_ids"])
    original = input_ids.copy()
    positions = np.asarray(sample["masked_positions"], dtype=np.int64)
    original[positions] = np.asarray(sample["masked_labels"])
    masked = np.zeros(len(input_ids), dtype=bool)
    masked[positions] = True
    knowledge = []
    if details is not None:
        knowledge = list(zip(details.knowledge_starts.tolist(), details.knowledge_ends.tolist()))
    label = f"{sample['masking_level']}: "
    shown = vocab.decode(input_ids)
    truth = vocab.decode(original)
    pieces: List[str] = []
    position = 0
    for start, end, is_knowledge in _runs(masked, knowledge):
        pieces.extend(truth[position:start])
        prefix = label if is_knowledge else ""
        pieces.append(f"⟦{prefix}{' '.join(truth[start:end])} ⇒ {' '.join(shown[start:end])}⟧")
        position = end
    pieces.extend(truth[position:])
    return " ".join(pieces)


def _prediction_summary(sample: Mapping[str, object], details: Optional[MaskedSample]) -> str:
    predicted = len(np.asarray(sample["masked_positions"]))
    level = str(sample["masking_level"])
    if details is None or level not in KNOWLEDGE_LEVELS:
        return f"{predicted} predicted"
    spans = len(details.knowledge_starts)
    if spans == 0:
        return f"{predicted} predicted (no whole {level} span, {predicted} in words)"
    span_tokens = int((details.knowledge_ends - details.knowledge_starts).sum())
    plural = "s" if spans > 1 else ""
    return f"{predicted} predicted ({span_tokens} in {spans} whole {level} span{plural}, {predicted - span_tokens} in words)"


def describe_sample(
    index: int,
    split: str,
    sample: Mapping[str, object],
    vocab: MaskingVocab,
    details: Optional[MaskedSample] = None,
    step: Optional[int] = None,
) -> str:
    """A header line (index, training step, level, SOP label, sizes) and the rendered tokens."""
    sop = int(np.asarray(sample["sop_label"]))
    input_ids = np.asarray(sample["input_ids"])
    if not np.any(np.asarray(sample["token_type_ids"])):
        order = "segment A only"
    else:
        order = "swapped: B precedes A in the text" if sop else "A precedes B in the text"
    at_step = f" (read at step {step})" if step is not None else ""
    header = (
        f"--- {split} sample {index}{at_step}: masking_level={sample['masking_level']} sop_label={sop} ({order}), "
        f"{len(input_ids)} tokens, {_prediction_summary(sample, details)}"
    )
    return header + "\n" + render_sample(sample, vocab, details)
