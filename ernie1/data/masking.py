"""Masked-LM target selection for ERNIE pretraining: char, word (WWM), phrase and entity levels, vectorised.

A *unit* is the smallest thing masked as a whole:
- `char`: every token;
- `word`: a token plus the `##` tokens that follow it (whole-word masking over the `##` marks written at
  preprocessing time); a `##` token right after [CLS]/[SEP] opens a new unit instead of joining the previous segment.

At `phrase` / `entity` level (ERNIE 1.0's knowledge masking) the sample's knowledge spans of that kind come first:
taken whole, in random order, while they fit in `knowledge_share` of the budget (a span that does not fit is
skipped, never split). Whole words fill the rest of the budget, as at word level, never inside any span.

Word (or char) units are tiled left to right into *chunks* of n consecutive units with P(n) proportional to 1/n
(n <= max_ngrams; `favor_longer_ngram` reverses the weights); [CLS]/[SEP] and the units inside knowledge spans are
chunks of their own that are never chosen, so chunks never cross a segment boundary. Chunks are taken in random
order while they fit the budget; the chunk that overflows falls back to its longest prefix of whole units that fits
(the original's n -> n-1 fallback), and so on until the budget is met. This keeps the original's intent (about
`masked_lm_prob` of the tokens, n-gram spans of whole words, 80/10/10 per token) without its per-candidate Python
loop; RNG-stream parity with the original is not a goal (REFERENCE §7). The cost is a fixed number of numpy calls
per sample, whatever its length: ~60 µs at seq 512 (benchmarks/bench_dataset.py).

Every `##<CJK>` id (base or extended vocab) is rewritten to its plain character in both the model input and the
labels, so no extended id reaches the model (REFERENCE §7.2, §18.6).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence, Tuple

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

    @functools.cached_property
    def opens_word(self) -> np.ndarray:
        """bool [V]: the token starts a word (it is no `##` continuation)."""
        return ~self.is_continuation

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


def sample_units(
    ids: np.ndarray, vocab: MaskingVocab, level: str, special_positions: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """(bounds, special): unit i of the sample is tokens [bounds[i], bounds[i+1]); [CLS]/[SEP] are 1-token units,
    marked in `special`. The units tile the sample (bounds[0] = 0, bounds[-1] = len(ids)).

    `special_positions` (the sorted [CLS]/[SEP] positions) saves finding them.
    """
    length = len(ids)
    if special_positions is None:
        special_positions = ((ids == vocab.cls_id) | (ids == vocab.sep_id)).nonzero()[0]
    if level == "char":
        bounds = np.arange(length + 1)
    else:
        opens = np.empty(length + 1, dtype=bool)
        opens[:length] = vocab.opens_word[ids]  # [CLS]/[SEP] never continue a word, ...
        opens[0] = opens[length] = True
        for position in special_positions.tolist():
            opens[position + 1] = True  # ... and a `##` token right after one opens a unit
        bounds = opens.nonzero()[0]
    special = np.zeros(len(bounds) - 1, dtype=bool)
    special[bounds.searchsorted(special_positions)] = True
    return bounds, special


def unit_spans(ids: np.ndarray, vocab: MaskingVocab, level: str) -> Tuple[np.ndarray, np.ndarray]:
    """(starts, ends) int64 token ranges of the char- or word-level units of a sample; [CLS]/[SEP] excluded."""
    bounds, special = sample_units(np.asarray(ids), vocab, level)
    return bounds[:-1][~special], bounds[1:][~special]


def _inside_ranges(range_starts: np.ndarray, range_ends: np.ndarray, length: int) -> np.ndarray:
    """bool [length]: True inside the sorted, disjoint [start, end) ranges."""
    # A toggle at every start and end; where one range ends and the next begins the two toggles cancel.
    toggles = np.zeros(length + 1, dtype=bool)
    toggles[range_starts] = True
    toggles[range_ends] ^= True
    return np.logical_xor.accumulate(toggles[:length])


@functools.lru_cache(maxsize=64)
def _uint16_thresholds(cdf_bytes: bytes) -> np.ndarray:
    cdf = np.frombuffer(cdf_bytes, dtype=np.float64)
    return (cdf[:-1] * (65536.0 / cdf[-1])).astype(np.uint16)


def _tile_chunks(blocked: np.ndarray, cdf: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Chunk bounds over the units: chunk j is units [result[j], result[j+1]), an n-gram tiling of the units in
    which every `blocked` unit is a chunk of its own.

    `draws`: one uint16 per unit (the n of a chunk starting there), compared with the n-gram CDF in units of
    1/65536 (the same dtype on both sides: a mixed-dtype searchsorted is several times slower).
    """
    num_units = len(blocked)
    thresholds = _uint16_thresholds(np.asarray(cdf, dtype=np.float64).tobytes())
    lengths = thresholds.searchsorted(draws, side="right")
    lengths += 1
    tiled = lengths.cumsum()
    boundary = np.zeros(int(tiled[-1]) + 1, dtype=bool)
    boundary[tiled] = True
    boundary[0] = boundary[num_units] = True
    boundary[:num_units] |= blocked
    boundary[1 : num_units + 1] |= blocked
    return boundary[: num_units + 1].nonzero()[0]


def _take_knowledge(span_tokens: np.ndarray, cap: int, keys: np.ndarray) -> np.ndarray:
    """bool mask of the spans taken whole: in the order of their random `keys` while they fit in `cap` tokens.

    A span that does not fit is skipped and the next ones are still tried; a span is never split.
    """
    taken = np.zeros(len(span_tokens), dtype=bool)
    room = cap
    order = keys.argsort()
    for index, tokens in zip(order.tolist(), span_tokens[order].tolist()):
        if tokens <= room:
            taken[index] = True
            room -= tokens
            if room == 0:
                break
    return taken


def _select_words(
    bounds: np.ndarray, blocked: np.ndarray, budget: int, cdf: np.ndarray, tile_draws: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """bool [num_tokens]: the tokens of the unblocked n-gram chunks chosen in random order while they fit `budget`.

    `tile_draws`: a uint16 per unit; `keys`: a uint64 per unit (overwritten), the chunks' random order.
    """
    chunks = _tile_chunks(blocked, cdf, tile_draws)  # a blocked unit is a chunk of its own, and never chosen
    num_chunks = len(chunks) - 1
    chunk_bounds = bounds[chunks]
    chunk_tokens = chunk_bounds[1:] - chunk_bounds[:-1]
    excluded = blocked[chunks[:-1]]
    keys = keys[:num_chunks]
    keys >>= np.uint64(1)  # below _LAST_KEY; 63 random bits: distinct keys, so the order is the same on any machine
    keys[excluded] = _LAST_KEY
    order = keys.argsort()[: num_chunks - np.count_nonzero(excluded)]
    cumulative = chunk_tokens[order].cumsum()
    taken = int(cumulative.searchsorted(budget, side="right"))
    chosen = np.zeros(num_chunks, dtype=bool)
    chosen[order[:taken]] = True
    mask = np.repeat(chosen, chunk_tokens)
    remaining = budget - (int(cumulative[taken - 1]) if taken else 0)
    if remaining > 0 and taken < len(order):
        _fill_remainder(mask, bounds, chunks, order[taken:], remaining)
    return mask


def _fill_remainder(
    mask: np.ndarray, bounds: np.ndarray, chunks: np.ndarray, rest: np.ndarray, remaining: int
) -> None:
    """Mark, in `mask`, the longest whole-unit prefix of each next chunk in `rest` that fits (the original's
    n -> n-1 fallback) until `remaining` tokens are used.

    Only chunks whose first unit fits are visited, at most _MAX_REMAINDER_CHUNKS of them (the remainder is
    smaller than one chunk, so a few are always enough unless nearly every word is too long).
    """
    first_units = chunks[rest]
    fits = bounds[first_units + 1] - bounds[first_units] <= remaining
    for chunk in rest[fits][:_MAX_REMAINDER_CHUNKS].tolist():
        first, last = int(chunks[chunk]), int(chunks[chunk + 1])
        begin = best = int(bounds[first])
        for unit_end in bounds[first + 1 : last + 1].tolist():
            if unit_end - begin > remaining:
                break
            best = unit_end
        mask[begin:best] = True
        remaining -= best - begin
        if remaining == 0:
            return


class MaskedSample(NamedTuple):
    """Model input ids after masking and restoring, the sorted masked positions and their original (restored) ids,
    and the knowledge spans masked whole among them (`knowledge_starts/ends`, sorted; for display)."""

    input_ids: np.ndarray
    masked_positions: np.ndarray
    masked_labels: np.ndarray
    knowledge_starts: np.ndarray
    knowledge_ends: np.ndarray


_EMPTY = np.zeros(0, dtype=np.int64)
_MAX_REMAINDER_CHUNKS = 32
_LAST_KEY = np.uint64(2**64 - 1)
_MASK_THRESHOLD = int(MASK_PROB * 2**32)
_REPLACE_THRESHOLD = int((MASK_PROB + KEEP_PROB) * 2**32)


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
    knowledge_share: float = 1.0,
    special_positions: Optional[np.ndarray] = None,
) -> MaskedSample:
    """Choose and apply the masked-LM targets of one sample `[CLS] A [SEP] (B [SEP])` (raw ids, `##` marks intact).

    `knowledge_starts/ends`: the spans of the level's kind in sample positions (phrase/entity levels only): sorted,
    disjoint, whole words (`KnowledgeSpans.corpus_spans` makes them so). They are taken whole first, in random order
    while they fit in `knowledge_share` of the budget; whole-word n-grams outside every span fill the rest.
    `special_positions`: the [CLS]/[SEP] positions, when known. Ids must be < vocab.size (ErnieDataset checks its
    corpus once).
    """
    ids = np.asarray(ids)
    length = len(ids)
    restored = vocab.restore_char[ids]
    budget = masking_budget(length, masked_lm_prob, max_predictions)
    if budget == 0:
        return MaskedSample(restored, _EMPTY, _EMPTY, _EMPTY, _EMPTY)
    bounds, blocked = sample_units(ids, vocab, level, special_positions)
    num_units = len(blocked)
    # All the random bits this sample needs in one call (raw Philox output is ~3x cheaper than doubles): a uint16
    # per unit for the n-gram tiling, a uint64 key per unit (the order of the chunks) and per knowledge span, two
    # uint32 per prediction.
    num_spans = len(knowledge_starts) if knowledge_starts is not None else 0
    tile_words = (num_units + 3) // 4
    raw = rng.bit_generator.random_raw(tile_words + num_units + num_spans + budget)
    tile_draws = raw[:tile_words].view(np.uint16)[:num_units]
    keys = raw[tile_words : tile_words + num_units]
    span_keys = raw[tile_words + num_units : tile_words + num_units + num_spans]
    token_draws = raw[tile_words + num_units + num_spans :].view(np.uint32)
    taken_starts = taken_ends = _EMPTY
    knowledge_mask = None
    if num_spans:
        in_spans = _inside_ranges(knowledge_starts, knowledge_ends, length)
        blocked = (
            blocked | in_spans[bounds[:-1]]
        )  # words inside any span are no word units: spans go whole or not at all
        span_tokens = knowledge_ends - knowledge_starts
        cap = int(knowledge_share * budget)
        if int(span_tokens.sum()) <= cap:
            taken_starts, taken_ends, knowledge_mask = knowledge_starts, knowledge_ends, in_spans
        elif cap > 0:
            taken = _take_knowledge(span_tokens, cap, span_keys)
            taken_starts, taken_ends = knowledge_starts[taken], knowledge_ends[taken]
            knowledge_mask = _inside_ranges(taken_starts, taken_ends, length)
        budget -= int((taken_ends - taken_starts).sum())
    if budget > 0:
        mask = _select_words(bounds, blocked, budget, cdf, tile_draws, keys)
        if knowledge_mask is not None:
            mask |= knowledge_mask
    else:
        mask = knowledge_mask
    positions = mask.nonzero()[0]
    labels = restored[positions]
    count = len(positions)
    half = len(token_draws) // 2
    decision, pick = token_draws[:count], token_draws[half : half + count]
    input_ids = restored.copy()
    input_ids[positions[decision < _MASK_THRESHOLD]] = vocab.mask_id
    replace = decision >= _REPLACE_THRESHOLD  # in between (10 %): the token stays
    pool = vocab.replacement_ids
    input_ids[positions[replace]] = pool[(pick[replace] * (len(pool) / 2**32)).astype(np.int64)]
    return MaskedSample(input_ids, positions, labels, taken_starts, taken_ends)
