"""Masked-LM target selection for ERNIE pretraining: char, word (WWM), phrase and entity levels, vectorised.

A *unit* is the smallest thing masked as a whole:
- `char`: every token;
- `word`: a token plus the `##` tokens that follow it (whole-word masking over the `##` marks written at
  preprocessing time); a `##` token right after [CLS]/[SEP] opens a new unit instead of joining the previous segment;
- `phrase` / `entity`: a knowledge span of that kind (snapped outwards to whole words), word units elsewhere.

Units are tiled left to right into *chunks* of n consecutive units with P(n) proportional to 1/n (n <= max_ngrams;
`favor_longer_ngram` reverses the weights). Chunks never cross a segment boundary and a knowledge unit is always a
chunk of its own. Chunks are taken in random order while they fit the budget; a chunk that overflows falls back to
its longest prefix of whole units that fits (the original's n -> n-1 fallback), until the budget is met.
This keeps the original's intent (about `masked_lm_prob` of the tokens, n-gram spans of whole words, 80/10/10)
without its per-candidate Python loop; RNG-stream parity with the original is not a goal (REFERENCE §7).

Every `##<CJK>` id (base or extended vocab) is rewritten to its plain character in both the model input and the
labels, so no extended id reaches the model (REFERENCE §7.2, §18.6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.text.cjk import cjk_extension_tokens, is_cjk_char
from ernie1.text.tokenizer import read_vocab_file

MASK_PROB, KEEP_PROB = 0.8, 0.1  # the rest (0.1) is replaced by a random base-vocab token
_BRACKETED = re.compile(r"^\[[^\]]*\]$")  # [PAD], [unused1], <...> style reserved entries are never replacements


@dataclass(frozen=True, eq=False)
class MaskingVocab:
    """Vocabulary facts the masker needs, as numpy lookup tables over the extended (`##`-augmented) vocab.

    tokens: id -> token string (extended vocab), for display.
    base_vocab_size: ids below this are the model's vocabulary; the `##字` extension lies above.
    replacement_ids: the pool for the 10 % random replacement: base ids that are not special, bracketed
        ([unused1], ...) or `##` continuation tokens (a documented choice: the original drew from every base id).
    is_continuation: bool [V]: the token starts with `##` (joins the previous word).
    restore_char: int64 [V]: `##<CJK>` -> plain char id ([UNK] when the plain char is not in the vocab); other
        extended ids -> [UNK]; identity otherwise.
    """

    tokens: Tuple[str, ...]
    base_vocab_size: int
    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int
    unk_id: int
    replacement_ids: np.ndarray
    is_continuation: np.ndarray
    restore_char: np.ndarray

    @property
    def size(self) -> int:
        """Extended vocab size (the number of ids the corpus may contain)."""
        return len(self.tokens)

    @classmethod
    def from_tokens(
        cls,
        tokens: Sequence[str],
        base_vocab_size: Optional[int] = None,
        *,
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        mask_token: str = "[MASK]",
        pad_token: str = "[PAD]",
        unk_token: str = "[UNK]",
        special_tokens: Sequence[str] = (),
    ) -> "MaskingVocab":
        """Build from an id-ordered token list (base vocab, then the `##` extension)."""
        tokens = tuple(tokens)
        base = len(tokens) if base_vocab_size is None else int(base_vocab_size)
        if not 0 < base <= len(tokens):
            raise ValueError(f"base_vocab_size {base} must be in [1, {len(tokens)}]")
        index = {}
        for i, token in enumerate(tokens):
            index.setdefault(token, i)
        required = {"cls": cls_token, "sep": sep_token, "mask": mask_token, "pad": pad_token, "unk": unk_token}
        missing = [token for token in required.values() if token not in index]
        if missing:
            raise ToolkitError(f"the vocabulary lacks the special tokens {', '.join(missing)}; use a BERT/ERNIE vocab")
        ids = {name: index[token] for name, token in required.items()}
        specials = set(required.values()) | set(special_tokens)

        is_continuation = np.fromiter((t.startswith("##") for t in tokens), dtype=bool, count=len(tokens))
        restore = np.arange(len(tokens), dtype=np.int64)
        restore[base:] = ids["unk"]
        for i in is_continuation.nonzero()[0]:
            plain = tokens[i][2:]
            if is_cjk_char(plain):
                restore[i] = index.get(plain, ids["unk"])
        replacement = np.asarray(
            [
                i
                for i in range(base)
                if tokens[i] not in specials and not is_continuation[i] and not _BRACKETED.match(tokens[i])
            ],
            dtype=np.int64,
        )
        if len(replacement) == 0:
            raise ToolkitError("the vocabulary has no ordinary token to use for random replacement")
        return cls(
            tokens=tokens,
            base_vocab_size=base,
            cls_id=ids["cls"],
            sep_id=ids["sep"],
            mask_id=ids["mask"],
            pad_id=ids["pad"],
            unk_id=ids["unk"],
            replacement_ids=replacement,
            is_continuation=is_continuation,
            restore_char=restore,
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> "MaskingVocab":
        """Build from a paddlenlp WordPiece tokenizer, after `extend_chinese_char` if the corpus used it."""
        base_index: Mapping[int, str] = tokenizer.vocab.idx_to_token
        base = len(base_index)
        added: Mapping[int, str] = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        size = max([base - 1, *added.keys()]) + 1
        tokens = [tokenizer.unk_token] * size
        for i, token in base_index.items():
            tokens[int(i)] = token
        for i, token in added.items():
            tokens[int(i)] = str(token)
        return cls.from_tokens(
            tokens,
            base,
            cls_token=tokenizer.cls_token,
            sep_token=tokenizer.sep_token,
            mask_token=tokenizer.mask_token,
            pad_token=tokenizer.pad_token,
            unk_token=tokenizer.unk_token,
            special_tokens=tuple(getattr(tokenizer, "all_special_tokens", ())),
        )

    @classmethod
    def from_vocab_file(cls, path: str, flag: Optional[str] = None) -> "MaskingVocab":
        """Build from a vocab.txt (one token per line) plus the `##<CJK>` extension the preprocessing adds.

        `flag`, when given, starts the error messages (the CLI flag that named the file).
        """
        tokens = read_vocab_file(Path(path), flag)
        return cls.from_tokens(tokens + cjk_extension_tokens(tokens), len(tokens))

    def restore(self, ids: np.ndarray) -> np.ndarray:
        """`##<CJK>` ids -> plain char ids (int64); ToolkitError when an id lies outside the vocabulary."""
        ids = np.asarray(ids)
        if ids.size and int(ids.max()) >= self.size:
            raise ToolkitError(
                f"token id {int(ids.max())} is outside the vocabulary ({self.size} ids incl. the ## extension): "
                "the data was encoded with another vocab; pass the --model_name/--vocab used by "
                "create_pretraining_data.py"
            )
        return self.restore_char[ids]

    def decode(self, ids: Sequence[int]) -> list:
        """Token strings of `ids`."""
        return [self.tokens[int(i)] if 0 <= int(i) < self.size else f"<{int(i)}>" for i in ids]


def ngram_cdf(max_ngrams: int, favor_longer_ngram: bool = False) -> np.ndarray:
    """Unnormalised cumulative weights of n = 1..max_ngrams: P(n) proportional to 1/n (reversed if favoured)."""
    weights = 1.0 / np.arange(1, max_ngrams + 1, dtype=np.float64)
    if favor_longer_ngram:
        weights = weights[::-1]
    return np.cumsum(weights)


def masking_budget(num_tokens: int, masked_lm_prob: float, max_predictions: float) -> int:
    """min(max_predictions, max(1, round(num_tokens * p))) tokens; 0 when p == 0 (REFERENCE §7.3, §18.5)."""
    if masked_lm_prob <= 0.0:
        return 0
    return int(min(max_predictions, max(1, round(num_tokens * masked_lm_prob))))


def unit_spans(ids: np.ndarray, vocab: MaskingVocab, level: str) -> Tuple[np.ndarray, np.ndarray]:
    """(starts, ends) int64 token ranges of the char- or word-level units of a sample; [CLS]/[SEP] excluded."""
    special = (ids == vocab.cls_id) | (ids == vocab.sep_id)
    if level == "char":
        opens = ~special
    else:
        opens = ~vocab.is_continuation[ids]
        opens[0] = True
        opens[1:] |= special[:-1]  # a `##` token right after [CLS]/[SEP] opens a unit
        opens &= ~special
    boundaries = (opens | special).nonzero()[0]
    is_start = opens[boundaries]
    ends_of = np.empty_like(boundaries)
    ends_of[:-1] = boundaries[1:]
    ends_of[-1] = len(ids)
    return boundaries[is_start], ends_of[is_start]


def merge_knowledge_units(
    starts: np.ndarray, ends: np.ndarray, span_starts: np.ndarray, span_ends: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace the word units covered by knowledge spans with one unit per span.

    Spans must lie inside the segments (never on [CLS]/[SEP]) with start < end. They are snapped outwards to whole
    units; a span overlapping an earlier one (by start) is dropped. Returns (starts, ends, is_knowledge).
    """
    if len(span_starts) == 0 or len(starts) == 0:
        return starts, ends, np.zeros(len(starts), dtype=bool)
    first = starts.searchsorted(span_starts, side="right") - 1  # unit holding the span's first token
    last = starts.searchsorted(span_ends - 1, side="right") - 1
    order = first.argsort(kind="stable")
    first, last = first[order], last[order]
    # Drop every span that overlaps an earlier one, vectorised: it starts before the furthest end so far.
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = first[1:] > np.maximum.accumulate(last)[:-1]
    first, last = first[keep], last[keep]
    depth = np.bincount(first, minlength=len(starts) + 1) - np.bincount(last + 1, minlength=len(starts) + 1)
    kept_units = depth[:-1].cumsum() == 0
    kept_units[first] = True  # a span becomes its first unit, stretched to the end of its last one
    new_ends = ends.copy()
    new_ends[first] = ends[last]
    is_knowledge = np.zeros(len(starts), dtype=bool)
    is_knowledge[first] = True
    return starts[kept_units], new_ends[kept_units], is_knowledge[kept_units]


def _tile_chunks(
    starts: np.ndarray, ends: np.ndarray, forced: np.ndarray, cdf: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """First unit index of each chunk: n-gram tiling of the units with boundaries forced where `forced` is True."""
    num_units = len(starts)
    lengths = cdf.searchsorted(rng.random(num_units) * cdf[-1], side="right") + 1
    boundary = np.zeros(num_units + 1, dtype=bool)
    tiled = lengths.cumsum()
    boundary[tiled[tiled < num_units]] = True
    boundary[0] = True
    boundary[:num_units] |= forced
    return boundary[:num_units].nonzero()[0]


def _select_chunks(
    chunk_first: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    budget: int,
    rng: np.random.Generator,
) -> Tuple[np.ndarray, np.ndarray]:
    """Token ranges (starts, ends) chosen for prediction, at most `budget` tokens, chunks in random order."""
    chunk_last = np.empty_like(chunk_first)
    chunk_last[:-1] = chunk_first[1:] - 1
    chunk_last[-1] = len(starts) - 1
    chunk_tokens = ends[chunk_last] - starts[chunk_first]
    order = rng.permutation(len(chunk_first))
    cumulative = chunk_tokens[order].cumsum()
    taken = int(cumulative.searchsorted(budget, side="right"))
    range_starts = [starts[chunk_first[order[:taken]]]]
    range_ends = [ends[chunk_last[order[:taken]]]]
    remaining = budget - (int(cumulative[taken - 1]) if taken else 0)
    if remaining > 0 and taken < len(order):
        rest = order[taken:]
        firsts, lasts = chunk_first[rest], chunk_last[rest]
        fits = ends[firsts] - starts[firsts] <= remaining
        firsts, lasts = firsts[fits], lasts[fits]
        if len(firsts):
            # Fill the remainder with the longest whole-unit prefix of each next chunk that fits (the original's
            # n -> n-1 fallback). Only chunks whose first unit fits are visited; each acceptance shrinks the
            # remainder, so the loop is short.
            unit_ends = ends.tolist()
            extra_starts, extra_ends = [], []
            for begin, first, last in zip(starts[firsts].tolist(), firsts.tolist(), lasts.tolist()):
                best = -1
                for unit in range(first, last + 1):
                    if unit_ends[unit] - begin > remaining:
                        break
                    best = unit_ends[unit]
                if best > begin:
                    extra_starts.append(begin)
                    extra_ends.append(best)
                    remaining -= best - begin
                    if remaining == 0:
                        break
            range_starts.append(np.asarray(extra_starts, dtype=np.int64))
            range_ends.append(np.asarray(extra_ends, dtype=np.int64))
    return np.concatenate(range_starts), np.concatenate(range_ends)


def _ranges_to_positions(range_starts: np.ndarray, range_ends: np.ndarray, length: int) -> np.ndarray:
    """Sorted positions covered by disjoint [start, end) ranges."""
    # bincount, not fancy-index assignment: a range may start where the previous one ends.
    depth = np.bincount(range_starts, minlength=length + 1) - np.bincount(range_ends, minlength=length + 1)
    return (depth[:length].cumsum() > 0).nonzero()[0]


@dataclass(frozen=True, eq=False)
class MaskedSample:
    """Model input ids after masking and restoring, the sorted masked positions and their original (restored) ids."""

    input_ids: np.ndarray
    masked_positions: np.ndarray
    masked_labels: np.ndarray


def create_masked_lm_predictions(
    ids: np.ndarray,
    vocab: MaskingVocab,
    rng: np.random.Generator,
    *,
    level: str,
    masked_lm_prob: float,
    max_predictions: float,
    cdf: np.ndarray,
    knowledge_starts: Optional[np.ndarray] = None,
    knowledge_ends: Optional[np.ndarray] = None,
) -> MaskedSample:
    """Choose and apply the masked-LM targets of one sample `[CLS] A [SEP] (B [SEP])` (raw ids, `##` marks intact).

    `knowledge_starts/ends`: spans of the chosen kind in sample positions (phrase/entity levels only).
    """
    ids = np.asarray(ids)
    restored = vocab.restore(ids)
    budget = masking_budget(len(ids), masked_lm_prob, max_predictions)
    starts, ends = unit_spans(ids, vocab, level) if budget else (np.zeros(0, np.int64),) * 2
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MaskedSample(restored, empty, empty.copy())
    is_knowledge = None
    if knowledge_starts is not None and len(knowledge_starts):
        starts, ends, is_knowledge = merge_knowledge_units(starts, ends, knowledge_starts, knowledge_ends)
    forced = np.zeros(len(starts), dtype=bool)
    forced[1:] = starts[1:] != ends[:-1]  # a segment boundary ([SEP]) between two units
    if is_knowledge is not None:  # a knowledge unit is a chunk of its own
        forced |= is_knowledge
        forced[1:] |= is_knowledge[:-1]
    chunk_first = _tile_chunks(starts, ends, forced, cdf, rng)
    range_starts, range_ends = _select_chunks(chunk_first, starts, ends, budget, rng)
    positions = _ranges_to_positions(range_starts, range_ends, len(ids))
    labels = restored[positions]
    draws = rng.random(2 * len(positions))
    decision, pick = draws[: len(positions)], draws[len(positions) :]
    input_ids = restored.copy()
    input_ids[positions[decision < MASK_PROB]] = vocab.mask_id
    replace = decision >= MASK_PROB + KEEP_PROB
    pool = vocab.replacement_ids
    input_ids[positions[replace]] = pool[(pick[replace] * len(pool)).astype(np.int64)]
    return MaskedSample(input_ids, positions.astype(np.int64, copy=False), labels.astype(np.int64, copy=False))
