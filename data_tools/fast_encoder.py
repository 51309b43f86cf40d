"""Exact, vectorised sentence -> ids encoding for WordPiece tokenizers, with optional whole-word `##` marking.

`build_sentence_encoder(tokenizer, whole_word_mask)` returns an encoder whose ids equal, sentence by sentence,
`tokenizer.convert_tokens_to_ids(mark_whole_words(tokenizer.tokenize(text), words))` for paddlenlp's
`ErnieTokenizer` / `BertTokenizer` (with or without the `##` CJK extension), at a fraction of the cost:

* Every codepoint is classified once: SEP (whitespace: always a token boundary), ISO (a CJK character, or a
  punctuation/symbol character that lower-casing and accent stripping leave unchanged: always exactly one token,
  whatever its neighbours) or OTHER. ISO ids come from a codepoint table, applied with numpy.
* Maximal runs of OTHER characters (Latin words, digits, ...) are bounded by true token boundaries, so each run is
  tokenized by the real tokenizer, once per distinct run (cached).
* Whole-word marking: a window of 2..6 tokens at a CJK token is a word iff its concatenated text is one of the
  sentence's words. Windows and words are compared by a 64-bit polynomial hash of their characters, keyed with the
  length and the sentence index, so the greedy longest-match scan reduces to `np.isin` plus a short loop over the
  matched windows.
* Sentences the fast path cannot reason about (text containing a special or added token, which the tokenizer's trie
  splits out first, or unencodable lone surrogates) are encoded by the slow reference path.

`tests/data_tools/test_fast_encoder.py` checks equality with the slow path on thousands of real sentences.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from data_tools.wwm import DEFAULT_MAX_WORD_LEN, is_cjk_token, mark_whole_words

# Codepoints at or above this are never SEP or ISO (CJK extension G+, tags, variation selectors, private use):
# checked by test_codepoint_classes_beyond_table_limit.
TABLE_LIMIT = 0x30000
KIND_OTHER, KIND_SEP, KIND_ISO = 0, 1, 2

_MASK64 = (1 << 64) - 1
_HASH_BASE = 0x9E3779B97F4A7C15 | 1
_HASH_BASE_INV = pow(_HASH_BASE, -1, 1 << 64)
_LENGTH_KEY = np.uint64(0xC2B2AE3D27D4EB4F)
_SENTENCE_KEY = np.uint64(0x165667B19E3779F9)
_BITMAP_SHIFT = np.uint64(44)  # 2**20-entry prefilter
# A run cache above this many distinct runs is dropped and rebuilt: bounded memory on endless corpora.
_RUN_CACHE_LIMIT = 1 << 20

EncodeResult = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]


def _string_hash(text: str) -> int:
    value = 0
    for char in text:
        value = (value * _HASH_BASE + ord(char)) & _MASK64
    return value


class _Powers:
    """Growing tables of BASE**k and BASE**-k (mod 2**64)."""

    def __init__(self) -> None:
        self.up = np.ones(1, np.uint64)
        self.down = np.ones(1, np.uint64)

    def ensure(self, size: int) -> None:
        if size <= len(self.up):
            return
        size = max(size, 2 * len(self.up), 4096)
        up = np.full(size, _HASH_BASE, np.uint64)
        up[0] = 1
        down = np.full(size, _HASH_BASE_INV, np.uint64)
        down[0] = 1
        self.up = np.cumprod(up, dtype=np.uint64)
        self.down = np.cumprod(down, dtype=np.uint64)


@functools.lru_cache(maxsize=4)
def _codepoint_kinds(lower: bool, strip_accents: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(kind uint8 [TABLE_LIMIT+1], normalized ISO char uint32) for the basic tokenizer's settings."""
    from paddlenlp.transformers.tokenizer_utils import _is_control, _is_punctuation, _is_symbol, _is_whitespace

    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    is_chinese = BasicTokenizer()._is_chinese_char
    kinds = np.zeros(TABLE_LIMIT + 1, np.uint8)
    normalized = np.zeros(TABLE_LIMIT + 1, np.uint32)
    for cp in range(TABLE_LIMIT):
        char = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or cp == 0 or cp == 0xFFFD or _is_control(char):
            continue  # removed by the tokenizer: OTHER keeps it inside a run, which the tokenizer itself cleans
        if lower and char.lower() != char:
            continue
        if _is_whitespace(char) or char.isspace():
            kinds[cp] = KIND_SEP
            continue
        norm = char
        if strip_accents:
            norm = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn")
        if len(norm) != 1:
            continue
        if is_chinese(cp):
            kinds[cp], normalized[cp] = KIND_ISO, ord(norm)
        elif (_is_punctuation(char) or _is_symbol(char)) and norm == char and unicodedata.combining(char) == 0:
            kinds[cp], normalized[cp] = KIND_ISO, cp
    return kinds, normalized


@dataclass(frozen=True)
class _RunTokens:
    ids: Tuple[int, ...]
    sharp_ids: Tuple[int, ...]
    offsets: Tuple[int, ...]  # index within the run of each token's first character
    hashes: Tuple[int, ...]
    lengths: Tuple[int, ...]
    cjk: Tuple[bool, ...]


@dataclass
class _BatchRuns:
    """Tokens of all OTHER-character runs of a batch, in text order."""

    counts: np.ndarray  # tokens per run
    positions: np.ndarray  # char index (in the joined batch text) of each token's first character
    ids: np.ndarray
    sharp_ids: np.ndarray
    hashes: np.ndarray
    lengths: np.ndarray
    cjk: np.ndarray


@dataclass
class EncodedBatch:
    """Flat ids of several sentences: `ids[offsets[i]:offsets[i+1]]` is sentence i."""

    ids: np.ndarray  # int64 [num_tokens]
    lengths: np.ndarray  # int64 [num_sentences]
    char_offsets: Optional[np.ndarray] = None  # int32 [num_tokens], index in its sentence of each token's first char

    def split(self) -> List[np.ndarray]:
        """Per-sentence id arrays (views)."""
        return np.split(self.ids, np.cumsum(self.lengths)[:-1]) if len(self.lengths) else []


def _normalizer(tokenizer: Any):
    basic = tokenizer.basic_tokenizer
    lower = bool(getattr(basic, "do_lower_case", False))
    strip = (lower and basic.strip_accents is not False) or bool(basic.strip_accents)
    return lower, strip


def _char_offsets_by_alignment(tokenizer: Any, text: str, tokens: Sequence[str]) -> np.ndarray:
    """Index in `text` of each token's first character, by a left-to-right search of each token's surface form."""
    lower, strip = _normalizer(tokenizer) if hasattr(tokenizer, "basic_tokenizer") else (False, False)
    pieces: List[str] = []
    owners: List[int] = []
    for index, char in enumerate(text):
        piece = char.lower() if lower else char
        if strip:
            piece = "".join(c for c in unicodedata.normalize("NFD", piece) if unicodedata.category(c) != "Mn")
        pieces.append(piece)
        owners.extend([index] * len(piece))
    normalized = "".join(pieces)
    owners.append(len(text))
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    offsets = np.zeros(len(tokens), np.int32)
    cursor = 0
    for position, token in enumerate(tokens):
        while cursor < len(normalized) and normalized[cursor].isspace():
            cursor += 1
        surface = token[2:] if token.startswith("##") and len(token) > 2 else token
        found = normalized.find(surface, cursor) if (token not in special or token in text) else -1
        start = found if found >= 0 else cursor
        offsets[position] = owners[min(start, len(owners) - 1)]
        if found >= 0:
            cursor = found + len(surface)
    return offsets


class SlowSentenceEncoder:
    """The reference: `convert_tokens_to_ids(mark_whole_words(tokenize(text), words))`, one sentence at a time."""

    def __init__(self, tokenizer: Any, whole_word_mask: bool, max_word_len: int = DEFAULT_MAX_WORD_LEN) -> None:
        self.tokenizer = tokenizer
        self.whole_word_mask = whole_word_mask
        self.max_word_len = max_word_len

    def tokens(self, text: str, words: Optional[Sequence[str]] = None) -> List[str]:
        """Tokens of `text`, `##`-marked when whole-word masking is on and `words` is given."""
        tokens = self.tokenizer.tokenize(text)
        if self.whole_word_mask and words is not None:
            tokens = mark_whole_words(tokens, words, self.max_word_len)
        return tokens

    def encode(
        self, text: str, words: Optional[Sequence[str]] = None, return_char_offsets: bool = False
    ) -> EncodeResult:
        """int64 ids of one sentence (and int32 first-character offsets when asked)."""
        tokens = self.tokens(text, words)
        ids = np.asarray(self.tokenizer.convert_tokens_to_ids(tokens), dtype=np.int64).reshape(-1)
        if not return_char_offsets:
            return ids
        unmarked = self.tokenizer.tokenize(text)
        return ids, _char_offsets_by_alignment(self.tokenizer, text, unmarked)

    def encode_batch(
        self,
        texts: Sequence[str],
        words_list: Optional[Sequence[Optional[Sequence[str]]]] = None,
        return_char_offsets: bool = False,
    ) -> EncodedBatch:
        """Encode several sentences into one flat array (see EncodedBatch)."""
        results = [
            self.encode(text, None if words_list is None else words_list[i], return_char_offsets)
            for i, text in enumerate(texts)
        ]
        return _concat_results(results, return_char_offsets)


def _concat_results(results: List[EncodeResult], with_offsets: bool) -> EncodedBatch:
    if with_offsets:
        ids_parts = [r[0] for r in results]
        offset_parts = [r[1] for r in results]
    else:
        ids_parts, offset_parts = list(results), []
    lengths = np.array([len(part) for part in ids_parts], np.int64)
    ids = np.concatenate(ids_parts).astype(np.int64) if ids_parts else np.zeros(0, np.int64)
    offsets = None
    if with_offsets:
        offsets = np.concatenate(offset_parts).astype(np.int32) if offset_parts else np.zeros(0, np.int32)
    return EncodedBatch(ids, lengths, offsets)


class FastSentenceEncoder:
    """Vectorised encoder with the same output as SlowSentenceEncoder (see the module docstring)."""

    def __init__(self, tokenizer: Any, whole_word_mask: bool, max_word_len: int = DEFAULT_MAX_WORD_LEN) -> None:
        self.tokenizer = tokenizer
        self.whole_word_mask = whole_word_mask
        self.max_word_len = max_word_len
        self.slow = SlowSentenceEncoder(tokenizer, whole_word_mask, max_word_len)
        self._run_cache: Dict[str, _RunTokens] = {}
        self._powers = _Powers()
        self._key_bitmap = np.zeros(1 << (64 - int(_BITMAP_SHIFT)), bool)
        self._build_tables()
        self._build_fallback_check()

    def _token_id(self, token: str) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(token))

    def _build_tables(self) -> None:
        lower, strip = _normalizer(self.tokenizer)
        kinds, normalized = _codepoint_kinds(lower, strip)
        vocab = self.tokenizer.vocab.token_to_idx
        unk_token = self.tokenizer.unk_token
        iso_codepoints = np.nonzero(kinds == KIND_ISO)[0]
        slots = np.full(TABLE_LIMIT + 1, -1, np.int32)
        slots[kinds == KIND_SEP] = -2
        slots[iso_codepoints] = np.arange(len(iso_codepoints), dtype=np.int32)
        # Per ISO slot: the single token is the normalized char when the vocab has it, else the unknown token.
        token_strings = [chr(c) if chr(c) in vocab else unk_token for c in normalized[iso_codepoints].tolist()]
        unique_tokens = sorted(set(token_strings))
        ids = {t: self._token_id(t) for t in unique_tokens}
        sharp_ids = {t: self._token_id("##" + t) for t in unique_tokens}
        self._slots = slots
        self._iso_ids = np.array([ids[t] for t in token_strings], np.int64)
        self._iso_sharp_ids = np.array([sharp_ids[t] for t in token_strings], np.int64)
        self._iso_hashes = np.array([_string_hash(t) for t in token_strings], np.uint64)
        self._iso_lengths = np.array([len(t) for t in token_strings], np.int64)
        self._iso_cjk = np.array([is_cjk_token(t) for t in token_strings], bool)

    def _build_fallback_check(self) -> None:
        # The tokenizer's trie splits these out before basic tokenization (and never lower-cases them): sentences
        # containing one take the slow path.
        tokens = set(getattr(self.tokenizer, "unique_no_split_tokens", ()))
        tokens.update(getattr(self.tokenizer, "all_special_tokens", ()))
        tokens.update(getattr(self.tokenizer.basic_tokenizer, "never_split", ()))
        tokens.discard("")
        self._fallback_sharp = any(t.startswith("##") for t in tokens)
        self._fallback_tokens = sorted(t for t in tokens if not t.startswith("##"))

    def _needs_slow_path(self, text: str) -> bool:
        lowered = text.lower()
        if self._fallback_sharp and ("##" in text or "##" in lowered):
            return True
        return any(t in text or t in lowered for t in self._fallback_tokens)

    def _encode_run(self, run: str) -> _RunTokens:
        tokenizer = self.tokenizer
        tokens = tokenizer.tokenize(run)
        offsets = _char_offsets_by_alignment(tokenizer, run, tokens).tolist()
        cached = _RunTokens(
            ids=tuple(tokenizer.convert_tokens_to_ids(tokens)),
            sharp_ids=tuple(tokenizer.convert_tokens_to_ids(["##" + t for t in tokens])),
            offsets=tuple(offsets),
            hashes=tuple(_string_hash(t) for t in tokens),
            lengths=tuple(len(t) for t in tokens),
            cjk=tuple(is_cjk_token(t) for t in tokens),
        )
        if len(self._run_cache) >= _RUN_CACHE_LIMIT:
            self._run_cache.clear()
        self._run_cache[run] = cached
        return cached

    def encode(
        self, text: str, words: Optional[Sequence[str]] = None, return_char_offsets: bool = False
    ) -> EncodeResult:
        """int64 ids of one sentence (and int32 index in `text` of each token's first character when asked)."""
        batch = self.encode_batch([text], None if words is None else [words], return_char_offsets)
        if return_char_offsets:
            return batch.ids, batch.char_offsets
        return batch.ids

    def encode_batch(
        self,
        texts: Sequence[str],
        words_list: Optional[Sequence[Optional[Sequence[str]]]] = None,
        return_char_offsets: bool = False,
    ) -> EncodedBatch:
        """Encode several sentences at once (much faster per sentence than `encode`): one flat EncodedBatch."""
        texts = list(texts)
        if words_list is not None and len(words_list) != len(texts):
            raise ValueError(f"words_list has {len(words_list)} entries for {len(texts)} texts")
        joined = "\n".join(texts)
        slow_rows: List[int] = []
        codepoints = None
        if not self._needs_slow_path(joined):
            try:
                codepoints = np.frombuffer(joined.encode("utf-32-le"), np.uint32)
            except UnicodeEncodeError:
                codepoints = None
        if codepoints is None:
            slow_rows = [i for i, text in enumerate(texts) if self._needs_slow_path(text) or _has_surrogate(text)]
            if slow_rows:
                return self._encode_mixed(texts, words_list, slow_rows, return_char_offsets)
            codepoints = np.frombuffer(joined.encode("utf-32-le"), np.uint32)
        return self._encode_fast(texts, joined, codepoints, words_list, return_char_offsets)

    def _encode_mixed(
        self,
        texts: List[str],
        words_list: Optional[Sequence[Optional[Sequence[str]]]],
        slow_rows: List[int],
        return_char_offsets: bool,
    ) -> EncodedBatch:
        slow_set = set(slow_rows)
        fast_rows = [i for i in range(len(texts)) if i not in slow_set]
        fast_texts = [texts[i] for i in fast_rows]
        fast_words = None if words_list is None else [words_list[i] for i in fast_rows]
        fast_batch = self.encode_batch(fast_texts, fast_words, return_char_offsets)
        fast_ids = fast_batch.split()
        fast_offsets = (
            np.split(fast_batch.char_offsets, np.cumsum(fast_batch.lengths)[:-1])
            if return_char_offsets and len(fast_rows)
            else []
        )
        results: List[EncodeResult] = [None] * len(texts)  # type: ignore[list-item]
        for position, row in enumerate(fast_rows):
            results[row] = (fast_ids[position], fast_offsets[position]) if return_char_offsets else fast_ids[position]
        for row in slow_rows:
            results[row] = self.slow.encode(
                texts[row], None if words_list is None else words_list[row], return_char_offsets
            )
        return _concat_results(results, return_char_offsets)

    def _encode_fast(
        self,
        texts: List[str],
        joined: str,
        codepoints: np.ndarray,
        words_list: Optional[Sequence[Optional[Sequence[str]]]],
        return_char_offsets: bool,
    ) -> EncodedBatch:
        num_texts = len(texts)
        text_starts = np.zeros(num_texts, np.int64)
        if num_texts > 1:
            np.cumsum(np.fromiter(map(len, texts[:-1]), np.int64, count=num_texts - 1) + 1, out=text_starts[1:])

        slots = self._slots[np.minimum(codepoints, TABLE_LIMIT)]
        iso_positions = np.flatnonzero(slots >= 0)
        iso_slots = slots[iso_positions]
        marker = np.diff((slots == -1).view(np.int8), prepend=np.int8(0), append=np.int8(0))
        run_starts = np.flatnonzero(marker == 1)
        want_marks = self.whole_word_mask and words_list is not None

        # Tokens come out in text order: an ISO char is one token, a run's tokens sit at its first char.
        tokens_at_char = (slots >= 0).astype(np.int64)
        runs = None
        if len(run_starts):
            runs = self._run_tokens(joined, run_starts, np.flatnonzero(marker == -1))
            tokens_at_char[run_starts] = runs.counts
        tokens_before_char = np.zeros(len(slots) + 1, np.int64)
        np.cumsum(tokens_at_char, out=tokens_before_char[1:])
        num_tokens = int(tokens_before_char[-1])
        first_of_sentence = tokens_before_char[text_starts]
        token_counts = np.diff(first_of_sentence, append=np.int64(num_tokens))

        iso_index = tokens_before_char[iso_positions]
        if runs is not None:
            run_first = np.repeat(tokens_before_char[run_starts] - (np.cumsum(runs.counts) - runs.counts), runs.counts)
            run_index = run_first + np.arange(len(runs.ids), dtype=np.int64)

        def gather(iso_values: np.ndarray, run_values: Optional[np.ndarray]) -> np.ndarray:
            values = iso_values
            if runs is None:
                return values
            merged = np.empty(num_tokens, values.dtype)
            merged[iso_index] = values
            merged[run_index] = run_values
            return merged

        ids = gather(self._iso_ids[iso_slots], None if runs is None else runs.ids)
        if want_marks and num_tokens:
            marked = self._whole_word_marks(
                self._word_keys(texts, words_list, text_starts, codepoints),
                token_counts,
                gather(self._iso_hashes[iso_slots], None if runs is None else runs.hashes),
                gather(self._iso_lengths[iso_slots], None if runs is None else runs.lengths),
                gather(self._iso_cjk[iso_slots], None if runs is None else runs.cjk),
            )
            if marked is not None:
                ids = np.where(marked, gather(self._iso_sharp_ids[iso_slots], None if runs is None else runs.sharp_ids), ids)

        char_offsets = None
        if return_char_offsets:
            positions = gather(iso_positions, None if runs is None else runs.positions)
            sentence_of_token = np.repeat(np.arange(num_texts), token_counts)
            char_offsets = (positions - text_starts[sentence_of_token]).astype(np.int32)
        return EncodedBatch(ids, token_counts, char_offsets)

    def _run_tokens(self, joined: str, run_starts: np.ndarray, run_ends: np.ndarray) -> _BatchRuns:
        cache = self._run_cache
        encode_run = self._encode_run
        counts: List[int] = []
        offsets: List[int] = []
        ids: List[int] = []
        sharp_ids: List[int] = []
        hashes: List[int] = []
        lengths: List[int] = []
        cjk: List[bool] = []
        for start, end in zip(run_starts.tolist(), run_ends.tolist()):
            run = joined[start:end]
            entry = cache.get(run)
            if entry is None:
                entry = encode_run(run)
            counts.append(len(entry.ids))
            offsets.extend(entry.offsets)
            ids.extend(entry.ids)
            sharp_ids.extend(entry.sharp_ids)
            hashes.extend(entry.hashes)
            lengths.extend(entry.lengths)
            cjk.extend(entry.cjk)
        counts_array = np.array(counts, np.int64)
        return _BatchRuns(
            counts=counts_array,
            positions=np.repeat(run_starts, counts_array) + np.array(offsets, np.int64),
            ids=np.array(ids, np.int64),
            sharp_ids=np.array(sharp_ids, np.int64),
            hashes=np.array(hashes, np.uint64),
            lengths=np.array(lengths, np.int64),
            cjk=np.array(cjk, bool),
        )

    def _prefix_hashes(self, values: np.ndarray, lengths: Optional[np.ndarray] = None) -> np.ndarray:
        """prefix[k] = hash of the concatenation of the first k items (chars, or token strings of `lengths` chars).

        hash(s) = sum_i s[i] * B**(len(s)-1-i) mod 2**64, so prefix[k] = B**C_k * sum_{j<k} v_j * B**-C_{j+1} with
        C_k the characters before item k; a span's hash is prefix[b] - prefix[a] * B**(C_b - C_a).
        """
        count = len(values)
        if lengths is None:
            char_ends = np.arange(count + 1, dtype=np.int64)
        else:
            char_ends = np.zeros(count + 1, np.int64)
            np.cumsum(lengths, out=char_ends[1:])
        self._powers.ensure(int(char_ends[-1]) + 2)
        prefix = np.zeros(count + 1, np.uint64)
        np.cumsum(values * self._powers.down[char_ends[1:]], out=prefix[1:])
        prefix *= self._powers.up[char_ends]
        return prefix

    def _word_keys(
        self,
        texts: List[str],
        words_list: Sequence[Optional[Sequence[str]]],
        text_starts: np.ndarray,
        codepoints: np.ndarray,
    ) -> np.ndarray:
        """Sorted hash keys of every word of >= 2 characters, keyed with its length and sentence index."""
        counts = np.fromiter((0 if w is None else len(w) for w in words_list), np.int64, count=len(words_list))
        word_lengths = np.fromiter(
            map(len, itertools.chain.from_iterable(w for w in words_list if w is not None)), np.int64
        )
        if not len(word_lengths):
            return np.zeros(0, np.uint64)
        word_ends = np.cumsum(word_lengths)
        sentence = np.repeat(np.arange(len(words_list), dtype=np.int64), counts)
        if all(w is None or "".join(w) == t for t, w in zip(texts, words_list)):
            # The usual case (segmenter output): words tile their sentence, so hash them in place in the batch text.
            chars_before = np.zeros(len(words_list) + 1, np.int64)
            np.cumsum(np.fromiter((len(t) if w is not None else 0 for t, w in zip(texts, words_list)), np.int64,
                                  count=len(texts)), out=chars_before[1:])
            word_ends = word_ends - chars_before[sentence] + text_starts[sentence]
            prefix = self._prefix_hashes(codepoints.astype(np.uint64))
        else:
            flat = itertools.chain.from_iterable(w for w in words_list if w is not None)
            chars = np.frombuffer("".join(flat).encode("utf-32-le", "surrogatepass"), np.uint32)
            prefix = self._prefix_hashes(chars.astype(np.uint64))
        word_starts = word_ends - word_lengths
        word_hashes = prefix[word_ends] - prefix[word_starts] * self._powers.up[word_lengths]
        keep = word_lengths >= 2
        keys = _mix_key(word_hashes[keep], word_lengths[keep], sentence[keep].astype(np.uint64) * _SENTENCE_KEY)
        keys.sort()
        return keys

    def _whole_word_marks(
        self,
        word_keys: np.ndarray,
        token_counts: np.ndarray,
        hashes: np.ndarray,
        lengths: np.ndarray,
        cjk: np.ndarray,
    ) -> Optional[np.ndarray]:
        """Boolean [num_tokens]: tokens the greedy longest-match scan emits as `##<token>`; None when none."""
        num_tokens = len(hashes)
        if not len(word_keys) or not cjk.any():
            return None
        prefix = self._prefix_hashes(hashes, lengths)
        char_ends = np.zeros(num_tokens + 1, np.int64)
        np.cumsum(lengths, out=char_ends[1:])
        up = self._powers.up
        sentence_of_token = np.repeat(np.arange(len(token_counts), dtype=np.uint64), token_counts)
        sentence_key = sentence_of_token * _SENTENCE_KEY
        room = np.cumsum(token_counts)[sentence_of_token.astype(np.int64)] - np.arange(num_tokens)
        bitmap = self._key_bitmap
        word_buckets = (word_keys >> _BITMAP_SHIFT).view(np.int64)
        bitmap[word_buckets] = True
        best = np.zeros(num_tokens, np.int64)
        last_key = len(word_keys) - 1
        # Window of `window` tokens starting at every token i (slices, no gathers); only CJK starts that fit in
        # their sentence count. A bitmap over the keys' top bits rejects almost every non-word; the rest is exact.
        for window in range(min(self.max_word_len, num_tokens), 1, -1):
            span = num_tokens - window + 1
            char_length = char_ends[window : window + span] - char_ends[:span]
            window_hash = prefix[window : window + span] - prefix[:span] * up[char_length]
            keys = _mix_key(window_hash, char_length, sentence_key[:span])
            maybe = cjk[:span] & (room[:span] >= window) & bitmap[(keys >> _BITMAP_SHIFT).view(np.int64)]
            maybe_at = np.flatnonzero(maybe)
            if not len(maybe_at):
                continue
            maybe_keys = keys[maybe_at]
            is_word = word_keys[np.minimum(np.searchsorted(word_keys, maybe_keys), last_key)] == maybe_keys
            found = maybe_at[is_word]
            best[found[best[found] == 0]] = window
        bitmap[word_buckets] = False
        starts = np.flatnonzero(best)
        if not len(starts):
            return None
        starts, ends = _greedy_non_overlapping(starts, starts + best[starts])
        flags = np.zeros(num_tokens + 1, np.int64)
        flags[starts + 1] += 1
        flags[ends] -= 1
        return np.cumsum(flags[:num_tokens]) > 0


def _greedy_non_overlapping(starts: np.ndarray, ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Keep the windows the left-to-right scan uses: a window starting inside a kept one is skipped."""
    if len(starts) < 2:
        return starts, ends
    overlaps_earlier = np.zeros(len(starts), bool)
    overlaps_earlier[1:] = starts[1:] < np.maximum.accumulate(ends)[:-1]
    if not overlaps_earlier.any():
        return starts, ends
    # A window that overlaps nothing earlier is always kept; only clusters of overlapping windows need the scan.
    cluster = np.cumsum(~overlaps_earlier)
    in_cluster = np.bincount(cluster)[cluster] > 1
    keep = ~in_cluster
    free_from = -1
    for index, start, end in zip(
        np.flatnonzero(in_cluster).tolist(), starts[in_cluster].tolist(), ends[in_cluster].tolist()
    ):
        if start >= free_from:
            keep[index] = True
            free_from = end
    return starts[keep], ends[keep]


def _mix_key(hashes: np.ndarray, char_lengths: np.ndarray, sentence_keys: np.ndarray) -> np.ndarray:
    return (hashes ^ (char_lengths.astype(np.uint64) * _LENGTH_KEY)) + sentence_keys


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-32-le")
    except UnicodeEncodeError:
        return True
    return False


def build_sentence_encoder(
    tokenizer: Any, whole_word_mask: bool, max_word_len: int = DEFAULT_MAX_WORD_LEN
) -> Union[FastSentenceEncoder, SlowSentenceEncoder]:
    """An encoder with `encode(text, words=None, return_char_offsets=False)` and `encode_batch(...)`.

    WordPiece tokenizers (paddlenlp ErnieTokenizer/BertTokenizer) get the fast exact path; any other tokenizer gets
    the slow reference, which has the same interface.
    """
    if hasattr(tokenizer, "basic_tokenizer") and hasattr(tokenizer, "wordpiece_tokenizer"):
        if getattr(tokenizer.basic_tokenizer, "tokenize_chinese_chars", True):
            return FastSentenceEncoder(tokenizer, whole_word_mask, max_word_len)
    return SlowSentenceEncoder(tokenizer, whole_word_mask, max_word_len)
