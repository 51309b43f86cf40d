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
  sentence's words. Windows and words are compared by a 64-bit polynomial hash of their characters (mod 2**64, keyed
  with the length and the sentence index; a false match needs a 64-bit collision between short strings), looked up
  in a small direct-mapped table, so the greedy longest-match scan reduces to array operations plus a short loop
  over clusters of overlapping matches.
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

from ernie1.text.cjk import cjk_codepoint_mask, has_cjk_char
from ernie1.text.wwm import DEFAULT_MAX_WORD_LEN, mark_whole_words

# Codepoints at or above this are never SEP or ISO (CJK extension G+, tags, variation selectors, private use):
# checked by test_codepoints_beyond_the_table_are_never_boundaries.
TABLE_LIMIT = 0x30000
KIND_OTHER, KIND_SEP, KIND_ISO = 0, 1, 2

_MASK64 = (1 << 64) - 1
_HASH_BASE = 0x9E3779B97F4A7C15 | 1
_HASH_BASE_INV = pow(_HASH_BASE, -1, 1 << 64)
_SENTENCE_KEY = np.uint64(0x165667B19E3779F9)
# Characters per internal slice of a large encode_batch call (see encode_batch).
_CHUNK_CHARS = 32768
# Word-key lookup table: 2**16 buckets on the keys' top bits (512 KiB: stays in cache; reused across calls).
_TABLE_SHIFT = np.uint64(48)
# A run cache above this many distinct runs is dropped and rebuilt: bounded memory on endless corpora.
_RUN_CACHE_LIMIT = 1 << 18

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
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer
    from paddlenlp.transformers.tokenizer_utils import _is_control, _is_punctuation, _is_symbol, _is_whitespace

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


class _TokenTable:
    """Token attributes by row: rows [0, num_fixed) are the ISO characters' tokens (row = slot), later rows the
    tokens of each distinct OTHER-character run seen so far (run -> (first row, token count))."""

    COLUMNS = (
        ("ids", np.int64),
        ("sharp_ids", np.int64),  # id of "##" + token
        ("offsets", np.int64),  # index within the run of the token's first character (0 for ISO rows)
        ("hashes", np.uint64),  # _string_hash of the token string
        ("lengths", np.int64),  # characters in the token string
        ("cjk", bool),  # has_cjk_char(token)
    )

    def __init__(self, fixed: Dict[str, list]) -> None:
        self.num_fixed = len(fixed["ids"])
        self.columns = {name: np.array(fixed[name], dtype) for name, dtype in self.COLUMNS}
        self.clear()

    def clear(self) -> None:
        """Forget every run (bounded memory on endless corpora); the ISO rows stay."""
        self.runs: Dict[str, Tuple[int, int]] = {}
        self.size = self.num_fixed

    def add(self, run: str, values: Dict[str, list]) -> Tuple[int, int]:
        """Store the tokens of `run`; returns its (first row, count)."""
        count = len(values["ids"])
        if self.size + count > len(self.columns["ids"]):
            capacity = max(2 * len(self.columns["ids"]), self.size + count, 1024)
            for name, column in self.columns.items():
                grown = np.zeros(capacity, column.dtype)
                grown[: self.size] = column[: self.size]
                self.columns[name] = grown
        for name, column in self.columns.items():
            column[self.size : self.size + count] = values[name]
        entry = (self.size, count)
        self.runs[run] = entry
        self.size += count
        return entry


@dataclass
class EncodedBatch:
    """Flat ids of several sentences: `ids[offsets[i]:offsets[i+1]]` is sentence i."""

    ids: np.ndarray  # int64 [num_tokens]
    lengths: np.ndarray  # int64 [num_sentences]
    char_offsets: Optional[np.ndarray] = None  # int32 [num_tokens], index in its sentence of each token's first char

    def split(self) -> List[np.ndarray]:
        """Per-sentence id arrays (views)."""
        return _split_by_lengths(self.ids, self.lengths)

    def split_char_offsets(self) -> List[np.ndarray]:
        """Per-sentence char offset arrays (views); requires return_char_offsets=True."""
        if self.char_offsets is None:
            raise ValueError("encode_batch was called without return_char_offsets=True")
        return _split_by_lengths(self.char_offsets, self.lengths)


def _split_by_lengths(values: np.ndarray, lengths: np.ndarray) -> List[np.ndarray]:
    # Plain slicing: np.split costs microseconds per piece, which adds up at tens of thousands of sentences.
    ends = np.cumsum(lengths).tolist()
    starts = [0] + ends[:-1]
    return [values[start:end] for start, end in zip(starts, ends)]


def _normalizer(tokenizer: Any) -> Tuple[bool, bool]:
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


def _ascii_offsets(lowered: str, tokens: Sequence[str], unk_token: str) -> List[int]:
    """Start of each token in an ASCII run (lower-casing and accent stripping keep ASCII lengths)."""
    offsets: List[int] = []
    cursor = 0
    for token in tokens:
        surface = token[2:] if token.startswith("##") and len(token) > 2 else token
        found = lowered.find(surface, cursor) if token != unk_token else -1
        offsets.append(found if found >= 0 else cursor)
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
        self._powers = _Powers()
        self._key_table = np.zeros(1 << (64 - int(_TABLE_SHIFT)), np.uint64)
        self._key_multi = np.zeros(1 << (64 - int(_TABLE_SHIFT)), bool)
        self._lower_chars = bool(getattr(tokenizer, "do_lower_case", False))
        self._added_ids = tokenizer.added_tokens_encoder
        self._vocab_ids = tokenizer.vocab.token_to_idx
        self._unk_id = self._token_id(tokenizer.unk_token)
        self._build_tables()
        self._build_fallback_check()

    def _token_id(self, token: str) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(token))

    def _token_ids(self, tokens: List[str]) -> List[int]:
        # convert_tokens_to_ids without its per-token method calls: added tokens first, then the vocab, else [UNK].
        added, vocab, unk_id = self._added_ids, self._vocab_ids, self._unk_id
        return [added[t] if t in added else vocab.get(t, unk_id) for t in tokens]

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
        chars = normalized[iso_codepoints]
        token_strings = [chr(c) if chr(c) in vocab else unk_token for c in chars.tolist()]
        in_vocab = np.array([t != unk_token for t in token_strings], bool)
        unique_tokens = sorted(set(token_strings))
        ids = {t: self._token_id(t) for t in unique_tokens}
        sharp_ids = {t: self._token_id("##" + t) for t in unique_tokens}
        self._slots = slots
        # A one-character string hashes to its codepoint; only the unknown token needs _string_hash.
        self._tokens = _TokenTable(
            {
                "ids": [ids[t] for t in token_strings],
                "sharp_ids": [sharp_ids[t] for t in token_strings],
                "offsets": np.zeros(len(chars), np.int64),
                "hashes": np.where(in_vocab, chars.astype(np.uint64), np.uint64(_string_hash(unk_token))),
                "lengths": np.where(in_vocab, 1, len(unk_token)),
                "cjk": np.where(in_vocab, cjk_codepoint_mask(chars), has_cjk_char(unk_token)),
            }
        )

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

    def _add_run(self, run: str) -> Tuple[int, int]:
        tokenizer = self.tokenizer
        if run.isalnum() and run.isascii():
            # ASCII punctuation and whitespace never sit inside a run, so an alphanumeric ASCII run is exactly one
            # basic token: lower-case it and go straight to WordPiece (the common miss: numbers, English words).
            lowered = run.lower() if self._lower_chars else run
            tokens = tokenizer.wordpiece_tokenizer.tokenize(lowered)
            offsets = _ascii_offsets(lowered, tokens, tokenizer.unk_token)
        else:
            # tokenize() lower-cases char by char outside special tokens, splits added tokens out (a run has none:
            # such sentences take the slow path), then runs _tokenize; doing the same directly skips its overhead.
            lowered = "".join(map(str.lower, run)) if self._lower_chars else run
            tokens = tokenizer._tokenize(lowered)
            if run.isascii():
                offsets = _ascii_offsets(lowered, tokens, tokenizer.unk_token)
            else:
                offsets = _char_offsets_by_alignment(tokenizer, run, tokens).tolist()
        values = {
            "ids": self._token_ids(tokens),
            "sharp_ids": self._token_ids(["##" + t for t in tokens]),
            "offsets": offsets,
            "hashes": [_string_hash(t) for t in tokens],
            "lengths": [len(t) for t in tokens],
            "cjk": [has_cjk_char(t) for t in tokens],
        }
        return self._tokens.add(run, values)

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
        # Work on slices of about _CHUNK_CHARS characters: large enough to amortise numpy's per-call cost, small
        # enough for the per-token arrays to stay in cache.
        text_ends = np.cumsum(np.fromiter(map(len, texts), np.int64, count=len(texts)) + 1)
        if len(texts) < 2 or text_ends[-1] <= 2 * _CHUNK_CHARS:
            return self._encode_chunk(texts, words_list, return_char_offsets)
        bounds = np.unique(np.searchsorted(text_ends, np.arange(_CHUNK_CHARS, text_ends[-1], _CHUNK_CHARS)) + 1)
        bounds = [0] + [int(b) for b in bounds if 0 < b < len(texts)] + [len(texts)]
        parts = [
            self._encode_chunk(
                texts[start:end], None if words_list is None else words_list[start:end], return_char_offsets
            )
            for start, end in zip(bounds[:-1], bounds[1:])
        ]
        return EncodedBatch(
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.char_offsets for p in parts]) if return_char_offsets else None,
        )

    def _encode_chunk(
        self,
        texts: List[str],
        words_list: Optional[Sequence[Optional[Sequence[str]]]],
        return_char_offsets: bool,
    ) -> EncodedBatch:
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
        fast_batch = self._encode_chunk(fast_texts, fast_words, return_char_offsets)
        fast_ids = fast_batch.split()
        fast_offsets = fast_batch.split_char_offsets() if return_char_offsets else []
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
        text_lengths = np.fromiter(map(len, texts), np.int64, count=num_texts)
        text_starts = np.zeros(num_texts, np.int64)
        if num_texts > 1:
            np.cumsum(text_lengths[:-1] + 1, out=text_starts[1:])

        slots = self._slots[np.minimum(codepoints, TABLE_LIMIT)]
        iso_positions = np.flatnonzero(slots >= 0)
        iso_slots = slots[iso_positions]
        marker = np.diff((slots == -1).view(np.int8), prepend=np.int8(0), append=np.int8(0))
        run_starts = np.flatnonzero(marker == 1)

        # Tokens come out in text order: an ISO char is one token, a run's tokens sit at its first char.
        tokens_at_char = (slots >= 0).astype(np.int64)
        run_rows = None
        if len(run_starts):
            run_counts, run_rows = self._run_rows(joined, run_starts, np.flatnonzero(marker == -1))
            tokens_at_char[run_starts] = run_counts
        tokens_before_char = np.zeros(len(slots) + 1, np.int64)
        np.cumsum(tokens_at_char, out=tokens_before_char[1:])
        num_tokens = int(tokens_before_char[-1])
        token_counts = np.diff(tokens_before_char[text_starts], append=np.int64(num_tokens))

        columns = self._tokens.columns
        if run_rows is None:
            token_rows = iso_slots
        else:
            iso_index = tokens_before_char[iso_positions]
            run_first = np.repeat(tokens_before_char[run_starts] - (np.cumsum(run_counts) - run_counts), run_counts)
            run_index = run_first + np.arange(len(run_rows), dtype=np.int64)
            token_rows = np.empty(num_tokens, np.int64)
            token_rows[iso_index] = iso_slots
            token_rows[run_index] = run_rows

        def gather(name: str) -> np.ndarray:
            return columns[name][token_rows]

        ids = gather("ids")
        if self.whole_word_mask and words_list is not None and num_tokens:
            word_keys = self._word_keys(texts, words_list, text_lengths, text_starts, codepoints)
            marked = self._whole_word_marks(
                word_keys, token_counts, gather("hashes"), gather("lengths"), gather("cjk")
            )
            if marked is not None:
                ids = np.where(marked, gather("sharp_ids"), ids)

        char_offsets = None
        if return_char_offsets:
            positions = iso_positions
            if run_rows is not None:
                positions = np.empty(num_tokens, np.int64)
                positions[iso_index] = iso_positions
                positions[run_index] = np.repeat(run_starts, run_counts) + columns["offsets"][run_rows]
            sentence_of_token = np.repeat(np.arange(num_texts), token_counts)
            char_offsets = (positions - text_starts[sentence_of_token]).astype(np.int32)
        return EncodedBatch(ids, token_counts, char_offsets)

    def _run_rows(self, joined: str, run_starts: np.ndarray, run_ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(tokens per run, row in the run table of each run token, in text order)."""
        table = self._tokens
        if len(table.runs) >= _RUN_CACHE_LIMIT:
            table.clear()
        get, add = table.runs.get, self._add_run
        runs = [joined[start:end] for start, end in zip(run_starts.tolist(), run_ends.tolist())]
        entries = np.array([get(run) or add(run) for run in runs], np.int64).reshape(-1, 2)
        counts = entries[:, 1]
        first_index = np.cumsum(counts) - counts
        rows = np.repeat(entries[:, 0] - first_index, counts) + np.arange(int(counts.sum()), dtype=np.int64)
        return counts, rows

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
        text_lengths: np.ndarray,
        text_starts: np.ndarray,
        codepoints: np.ndarray,
    ) -> np.ndarray:
        """Sorted hash keys of every word of >= 2 characters, keyed with its length and sentence index."""
        if None in words_list:  # words_list holds lists of str, so `in` only matches a real None
            text_lengths = np.where([words is None for words in words_list], 0, text_lengths)
            texts = [text if words is not None else "" for text, words in zip(texts, words_list)]
            words_list = [() if words is None else words for words in words_list]
        counts = np.fromiter(map(len, words_list), np.int64, count=len(words_list))
        all_words = itertools.chain.from_iterable(words_list)
        word_lengths = np.fromiter(map(len, all_words), np.int64, count=int(counts.sum()))
        if not len(word_lengths):
            return np.zeros(0, np.uint64)
        word_ends = np.cumsum(word_lengths)
        sentence = np.repeat(np.arange(len(words_list), dtype=np.int64), counts)
        chars_before = np.zeros(len(words_list) + 1, np.int64)
        np.cumsum(text_lengths, out=chars_before[1:])
        word_chars = "".join(itertools.chain.from_iterable(words_list))
        # Words tile their sentence (segmenter output) iff the per-sentence character counts and the concatenation
        # agree; then they are hashed in place in the batch text, else from their own characters.
        chars_through_sentence = np.concatenate([[0], word_ends])[np.cumsum(counts)]
        tiles = np.array_equal(np.diff(chars_through_sentence, prepend=0), text_lengths) and word_chars == "".join(
            texts
        )
        if tiles:
            word_ends = word_ends - chars_before[sentence] + text_starts[sentence]
            prefix = self._prefix_hashes(codepoints.astype(np.uint64))
        else:
            chars = np.frombuffer(word_chars.encode("utf-32-le", "surrogatepass"), np.uint32)
            prefix = self._prefix_hashes(chars.astype(np.uint64))
        word_starts = word_ends - word_lengths
        word_hashes = prefix[word_ends] - prefix[word_starts] * self._powers.up[word_lengths]
        keep = word_lengths >= 2
        scale = self._powers.up[word_lengths[keep]]
        keys = word_hashes[keep] + scale + sentence[keep].astype(np.uint64) * _SENTENCE_KEY
        return np.unique(keys)

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
        sentence_of_token = np.repeat(np.arange(len(token_counts), dtype=np.int64), token_counts)
        sentence_key = sentence_of_token.astype(np.uint64) * _SENTENCE_KEY
        # Tokens a window may start at: CJK, with `room` tokens left in their sentence (0 elsewhere).
        room = np.where(cjk, np.cumsum(token_counts)[sentence_of_token] - np.arange(num_tokens), 0)
        lookup = _KeyLookup(self._key_table, self._key_multi, word_keys)
        best = np.zeros(num_tokens, np.int64)
        # Windows of `window` tokens at every token i at once, by slices (no gathers).
        try:
            for window in range(min(self.max_word_len, num_tokens), 1, -1):
                span = num_tokens - window + 1
                char_length = char_ends[window : window + span] - char_ends[:span]
                scale = up[char_length]
                keys = prefix[window : window + span] - prefix[:span] * scale + scale + sentence_key[:span]
                found = lookup.find(keys, room[:span] >= window)
                best[found[best[found] == 0]] = window
        finally:
            lookup.release()
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


class _KeyLookup:
    """Exact membership of 64-bit keys in a set of word keys: a direct-mapped table on the keys' top bits, with
    buckets holding several word keys resolved by binary search. Tables are reused across calls; `release` clears."""

    def __init__(self, table: np.ndarray, multi: np.ndarray, word_keys: np.ndarray) -> None:
        self.table, self.multi, self.word_keys = table, multi, word_keys  # word_keys: sorted, unique
        self.buckets = (word_keys >> _TABLE_SHIFT).view(np.int64)
        shared = np.flatnonzero(self.buckets[1:] == self.buckets[:-1])
        self.shared_buckets = self.buckets[shared]
        table[self.buckets] = word_keys
        multi[self.shared_buckets] = True

    def find(self, keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Indices i with valid[i] and keys[i] a word key."""
        buckets = (keys >> _TABLE_SHIFT).view(np.int64)
        hits = valid & (self.table[buckets] == keys)
        if len(self.shared_buckets):
            unsure = np.flatnonzero(valid & self.multi[buckets] & ~hits)
            if len(unsure):
                queries = keys[unsure]
                at = np.minimum(np.searchsorted(self.word_keys, queries), len(self.word_keys) - 1)
                hits[unsure[self.word_keys[at] == queries]] = True
        return np.flatnonzero(hits)

    def release(self) -> None:
        """Reset the shared tables for the next call."""
        self.table[self.buckets] = 0
        self.multi[self.shared_buckets] = False


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
