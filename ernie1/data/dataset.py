"""The ERNIE pretraining dataset: index-map rows -> `[CLS] A [SEP] B [SEP]` with SOP label and masked-LM targets.

Each sample is built from one row `(start_sentence, end_sentence_exclusive, target_len)` of the index map
(REFERENCE §6): the sentences are split into segments A and B at a random sentence boundary, swapped with
probability 0.5 (sentence-order prediction, label 1 when swapped), truncated to the target length (always the longer
segment, ties B, from the front or the back at random), laid out with [CLS]/[SEP] and masked (`ernie1.data.masking`).

Randomness is a counter-based Philox stream keyed by (split seed, split name, sample index): a sample is the same
whatever the rank, worker, epoch or resume point, and the train/valid/test splits never share masks
(REFERENCE §18.7). The masking level is drawn from the level mix, or, with a masking schedule, is the level of the
step that reads the sample (the train split is read in order): a pure function of the index as well.
"""

from __future__ import annotations

import threading
import zlib
from typing import Dict, Optional, Tuple

import numpy as np

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.common.formats import IDS_SUFFIX, KNOWLEDGE_SUFFIX
from ernie1.data.dataset_config import KNOWLEDGE_LEVELS, ErnieDatasetConfig
from ernie1.data.indexed_dataset import MMapIndexedDataset
from ernie1.data.knowledge_spans import KnowledgeSpans
from ernie1.data.masking import MaskedSample, MaskingVocab, create_masked_lm_predictions, ngram_cdf
from ernie1.text.knowledge import ENTITY, PHRASE

KNOWLEDGE_KIND = {"entity": ENTITY, "phrase": PHRASE}
_MASK64 = (1 << 64) - 1
_THREAD_RNG = threading.local()
_ZEROS4 = np.zeros(4, dtype=np.uint64)  # read, never written, by the Philox state setter


def sample_rng(key_high: int, key_low: int) -> np.random.Generator:
    """A Philox generator positioned at the start of stream (key_high, key_low).

    Reuses one generator per thread and only resets its state (a fresh `Philox(key=...)` costs ~4x more and a
    `RandomState` ~60x more); the returned object is valid until the next call in the same thread.
    """
    cached = getattr(_THREAD_RNG, "pair", None)
    if cached is None:
        bit_generator = np.random.Philox(key=0)
        cached = (bit_generator, np.random.Generator(bit_generator))
        _THREAD_RNG.pair = cached
    bit_generator, generator = cached
    bit_generator.state = {
        "bit_generator": "Philox",
        "state": {
            "counter": _ZEROS4,
            "key": np.array([key_high & _MASK64, key_low & _MASK64], dtype=np.uint64),
        },
        "buffer": _ZEROS4,
        "buffer_pos": 4,
        "has_uint32": 0,
        "uinteger": 0,
    }
    return generator


def truncation_counts(len_a: int, len_b: int, max_num_tokens: int) -> Tuple[int, int]:
    """Tokens removed from (A, B) when the longer segment (ties: B) loses one token at a time until the pair fits."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return 0, 0
    gap = abs(len_a - len_b)
    if excess <= gap:
        return (excess, 0) if len_a > len_b else (0, excess)
    alternating = excess - gap  # once equal, B goes first, then A, ...
    from_a = alternating // 2 + (gap if len_a > len_b else 0)
    from_b = alternating - alternating // 2 + (gap if len_b > len_a else 0)
    return from_a, from_b


def check_ids_fit_vocab(indexed: MMapIndexedDataset, vocab_size: int) -> None:
    """Refuse, at start, a corpus holding ids the tokenizer cannot produce (it was encoded with another vocab)."""
    if indexed.max_id >= vocab_size:
        raise ToolkitError(
            f"{indexed.prefix}{IDS_SUFFIX}: token id {indexed.max_id} is outside the tokenizer's vocabulary "
            f"({vocab_size} ids with the ## extension): the corpus was encoded with another vocab; train with the "
            "vocab that create_pretraining_data.py was given"
        )


class ErnieDataset:
    """Map-style dataset over one split's index map; `ds[i]` is a dict of unpadded numpy arrays (see DESIGN.md)."""

    def __init__(
        self,
        name: str,
        indexed: MMapIndexedDataset,
        samples_mapping: np.ndarray,
        config: ErnieDatasetConfig,
        vocab: MaskingVocab,
        knowledge: Optional[KnowledgeSpans],
        split_seed: int,
    ):
        if samples_mapping.ndim != 2 or samples_mapping.shape[1] != 3:
            raise ValueError(f"samples_mapping must be [N,3], got shape {samples_mapping.shape}")
        check_ids_fit_vocab(indexed, vocab.size)  # once here, so that masking can index its tables unchecked
        if config.needs_knowledge and knowledge is None:
            field = "masking_schedule" if config.masking_schedule else "masking_level"
            instead = "char and word stages only" if config.masking_schedule else "{masking_level} word"
            raise FieldError(
                field,
                f"{{{field}}} {getattr(config, field)}: phrase/entity masking needs knowledge spans "
                f"({indexed.prefix}{KNOWLEDGE_SUFFIX} not found); re-run create_pretraining_data.py with "
                f"--knowledge_spans or use {instead}",
            )
        if config.needs_knowledge and len(knowledge) != len(indexed):
            raise ToolkitError(
                f"{indexed.prefix}{KNOWLEDGE_SUFFIX}: spans for {len(knowledge)} sentences but the corpus has "
                f"{len(indexed)}; re-run create_pretraining_data.py --knowledge_spans"
            )
        self.name = name
        self.indexed = indexed
        self.samples_mapping = samples_mapping
        self.config = config
        self.vocab = vocab
        self.knowledge = knowledge if config.needs_knowledge else None
        self.split_seed = int(split_seed)
        self._stream_tag = zlib.crc32(name.encode("utf-8")) << 32
        # The train split follows the schedule; the valid/test splits use its last level (or the mix).
        self._schedule = config.schedule() if name == "train" else None
        mix = config.split_masking_mix(name)
        self._levels = tuple(level for level, _ in mix)
        self._level_cdf = np.cumsum([weight for _, weight in mix])
        self._ngram_cdf = ngram_cdf(config.max_ngrams, config.favor_longer_ngram)
        self._max_num_tokens = config.max_seq_length - 3  # room for [CLS] and two [SEP] (REFERENCE §6)
        self._max_predictions = config.masked_lm_prob * self._max_num_tokens
        self._bind_arrays()

    def _bind_arrays(self) -> None:
        # Plain ndarray views: slicing an np.memmap builds a memmap object per access.
        self._ids = np.asarray(self.indexed.ids)
        self._rows = np.asarray(self.samples_mapping)
        self._pointers = self.indexed.pointers
        self._spans_by_level = {}
        if self.knowledge is not None:
            levels = set(self._levels) | set(self._schedule.levels if self._schedule else ())
            for level in KNOWLEDGE_LEVELS:
                if level in levels:
                    kind = KNOWLEDGE_KIND[level]
                    self._spans_by_level[level] = self.knowledge.corpus_spans(
                        kind, self._pointers, self._ids, self.vocab.is_continuation
                    )

    def __getstate__(self) -> dict:
        # Pickled for spawn-based DataLoader workers (Windows, macOS): ship the file names, not the memory-mapped
        # corpus and index map, which pickle would copy in full.
        state = self.__dict__.copy()
        for key in ("indexed", "_ids", "_rows", "_pointers", "_spans_by_level"):
            del state[key]
        state["_prefix"] = self.indexed.prefix
        mapping = self.samples_mapping
        if isinstance(mapping, np.memmap) and mapping.filename:
            state["samples_mapping"] = ("npy", str(mapping.filename))
        return state

    def __setstate__(self, state: dict) -> None:
        prefix = state.pop("_prefix")
        if isinstance(state["samples_mapping"], tuple):
            state["samples_mapping"] = np.load(state["samples_mapping"][1], mmap_mode="r")
        self.__dict__.update(state)
        self.indexed = MMapIndexedDataset(prefix)
        self._bind_arrays()

    def __len__(self) -> int:
        return len(self.samples_mapping)

    def rng_for(self, idx: int) -> np.random.Generator:
        """The sample's random stream (see `sample_rng` for its lifetime)."""
        return sample_rng(self.split_seed, self._stream_tag ^ idx)

    def __getitem__(self, idx: int) -> Dict[str, object]:
        return self.build(idx)[0]

    def build(self, idx: int, schedule_index: Optional[int] = None) -> Tuple[Dict[str, object], MaskedSample]:
        """Sample `idx` (the dict `ds[idx]` returns) and its masking details.

        `schedule_index` places the sample on the masking schedule (default `idx`; a blend passes its own index).
        """
        size = len(self.samples_mapping)
        idx = int(idx)
        if idx < 0:
            idx += size
        if not 0 <= idx < size:
            raise IndexError(f"sample {idx} out of range for the {self.name} split of {size} samples")
        start, end, target = self._rows[idx].tolist()
        rng = self.rng_for(idx)
        head = rng.random(3)  # level choice, A/B split point, swap
        if self._schedule is not None:
            level = self._schedule.level_of_sample(idx if schedule_index is None else int(schedule_index))
        else:
            level = self._levels[int(self._level_cdf.searchsorted(head[0] * self._level_cdf[-1], side="right"))]
        begin = int(self._pointers[start])
        tokens = self._ids[begin : int(self._pointers[end])]
        segment_a, segment_b, sop_label = self._segments(start, end, begin, head[1], head[2])
        max_num_tokens = max(1, min(target, self._max_num_tokens))
        kept_a, kept_b = self._truncate(segment_a, segment_b, max_num_tokens, rng)
        ids, token_types = self._layout(tokens, kept_a, kept_b)
        len_a, len_b = kept_a[1] - kept_a[0], kept_b[1] - kept_b[0]
        special_positions = np.array([0, 1 + len_a, len(ids) - 1] if len_b else [0, 1 + len_a], dtype=np.int64)
        spans = self._sample_spans(level, begin, kept_a, kept_b)
        masked = create_masked_lm_predictions(
            ids,
            self.vocab,
            rng,
            level=level,
            masked_lm_prob=self.config.masked_lm_prob,
            max_predictions=self._max_predictions,
            cdf=self._ngram_cdf,
            knowledge_starts=spans[0],
            knowledge_ends=spans[1],
            knowledge_share=self.config.knowledge_mask_share,
            special_positions=special_positions,
        )
        sample = {
            "input_ids": masked.input_ids,
            "token_type_ids": token_types,
            "masked_positions": masked.masked_positions,
            "masked_labels": masked.masked_labels,
            "sop_label": np.array(sop_label, dtype=np.int64),
            "masking_level": level,
        }
        return sample, masked

    def _segments(
        self, start: int, end: int, begin: int, split_draw: float, swap_draw: float
    ) -> Tuple[Tuple[int, int], Tuple[int, int], int]:
        """Token ranges (within the sample's sentences) of A and B, and the SOP label."""
        num_sentences = end - start
        total = int(self._pointers[end]) - begin
        if not self.config.binary_head or num_sentences < 2:
            # A one-sentence sample only occurs with a mapping built for binary_head=False; keep it whole, label 0.
            return (0, total), (total, total), 0
        a_sentences = 1 if num_sentences < 3 else 1 + int(split_draw * (num_sentences - 1))
        split = int(self._pointers[start + a_sentences]) - begin
        if swap_draw < 0.5:
            return (split, total), (0, split), 1
        return (0, split), (split, total), 0

    @staticmethod
    def _truncate(
        segment_a: Tuple[int, int], segment_b: Tuple[int, int], max_num_tokens: int, rng: np.random.Generator
    ) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        """Kept token ranges of A and B; each removed token comes off the front or the back with probability 0.5."""
        len_a, len_b = segment_a[1] - segment_a[0], segment_b[1] - segment_b[0]
        remove_a, remove_b = truncation_counts(len_a, len_b, max_num_tokens)
        if remove_a + remove_b == 0:
            return segment_a, segment_b
        # Each removed token comes off the front with probability 0.5: the front counts are binomial.
        front_a = int(rng.binomial(remove_a, 0.5)) if remove_a else 0
        front_b = int(rng.binomial(remove_b, 0.5)) if remove_b else 0
        kept_a = (segment_a[0] + front_a, segment_a[1] - (remove_a - front_a))
        kept_b = (segment_b[0] + front_b, segment_b[1] - (remove_b - front_b))
        return kept_a, kept_b

    def _layout(
        self, tokens: np.ndarray, kept_a: Tuple[int, int], kept_b: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """`[CLS] A [SEP]` (type 0) + `B [SEP]` (type 1, only when B is non-empty), raw ids."""
        len_a, len_b = kept_a[1] - kept_a[0], kept_b[1] - kept_b[0]
        length = 2 + len_a + (len_b + 1 if len_b else 0)
        ids = np.empty(length, dtype=np.int64)
        ids[0] = self.vocab.cls_id
        ids[1 : 1 + len_a] = tokens[kept_a[0] : kept_a[1]]
        ids[1 + len_a] = self.vocab.sep_id
        token_types = np.zeros(length, dtype=np.int64)
        if len_b:
            ids[2 + len_a : 2 + len_a + len_b] = tokens[kept_b[0] : kept_b[1]]
            ids[-1] = self.vocab.sep_id
            token_types[2 + len_a :] = 1
        return ids, token_types

    def _sample_spans(
        self, level: str, begin: int, kept_a: Tuple[int, int], kept_b: Tuple[int, int]
    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Spans of the level's kind in sample positions, sorted, clipped to what truncation kept; (None, None) if none.

        Spans never cross a sentence, hence never a segment; the level's spans are sorted and disjoint corpus-wide,
        so the spans touching each kept range are one slice, found by binary search.
        """
        corpus_spans = self._spans_by_level.get(level)
        if corpus_spans is None:
            return None, None
        span_starts, span_ends = corpus_spans
        lows = (begin + kept_a[0], begin + kept_b[0])
        highs = (begin + kept_a[1], begin + kept_b[1])
        firsts = span_ends.searchsorted(lows, side="right").tolist()  # first span ending after the range starts
        stops = span_starts.searchsorted(highs, side="left").tolist()  # first span starting at or after its end
        # Sample position of a kept token: A starts at 1 (after [CLS]), B at 2 + len(A) (after the first [SEP]).
        positions = (1, 2 + kept_a[1] - kept_a[0])
        pieces = []
        for first, stop, low, high, position in zip(firsts, stops, lows, highs, positions):
            if stop > first and high > low:
                starts = span_starts[first:stop] + (position - low)
                ends = span_ends[first:stop] + (position - low)
                # Only the first and the last span can reach past the kept range (truncation cut them): clip them.
                starts[0] = max(int(starts[0]), position)
                ends[-1] = min(int(ends[-1]), position + high - low)
                pieces.append((starts, ends))
        if not pieces:
            return None, None
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate((pieces[0][0], pieces[1][0])), np.concatenate((pieces[0][1], pieces[1][1]))
