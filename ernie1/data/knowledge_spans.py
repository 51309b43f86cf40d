"""The `<prefix>_knowledge.npz` storage format: knowledge spans per stored sentence (writer and validated reader).

Arrays: `sent_ptr` int64 [num_sentences+1] (cumulative span count), `starts` int32 and `ends` int32 (token offsets
within the sentence, end exclusive), `kinds` uint8 (`ernie1.text.knowledge.ENTITY` = 1, `PHRASE` = 2). Spans of a
sentence are sorted by (start, end). The spans themselves are found by `ernie1.text.knowledge`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.common.files import ScratchFiles, write_errors_as
from ernie1.common.formats import IDX_SUFFIX, KNOWLEDGE_SUFFIX
from ernie1.data.indexed_dataset import load_npz_arrays, save_npz

SPAN_ARRAYS = ("sent_ptr", "starts", "ends", "kinds")


def knowledge_path(prefix: str) -> Path:
    """`<prefix>_knowledge.npz`."""
    return Path(prefix + KNOWLEDGE_SUFFIX)


class KnowledgeSpansWriter:
    """Streams spans one sentence at a time to scratch files; `finalize()` writes the .npz via an atomic rename."""

    def __init__(self, prefix: str):
        self._path = knowledge_path(prefix)
        self._label = f"--output_prefix {prefix}"
        with write_errors_as(self._label):
            self._scratch = ScratchFiles(self._path, streams=("counts", "spans"), temporaries=("npz",))
        self._counts, self._spans = self._scratch.streams["counts"], self._scratch.streams["spans"]
        self.num_sentences = 0
        self.num_spans = 0

    def add_sentence(self, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray) -> None:
        """Append the spans of the next stored sentence (arrays of equal length, possibly empty)."""
        rows = np.stack([np.asarray(starts, np.int32), np.asarray(ends, np.int32), np.asarray(kinds, np.int32)], 1)
        with write_errors_as(self._label):
            self._counts.write(np.int64(len(rows)).tobytes())
            self._spans.write(rows.astype(np.int32).tobytes())
        self.num_sentences += 1
        self.num_spans += len(rows)

    def finalize(self) -> None:
        """Write `<prefix>_knowledge.npz` (a one-line ToolkitError on a write error; `abort()` cleans up)."""
        with write_errors_as(self._label):
            self._finalize()

    def _finalize(self) -> None:
        self._scratch.close()
        paths = self._scratch.paths
        counts = np.fromfile(paths["counts"], dtype=np.int64)
        rows = np.fromfile(paths["spans"], dtype=np.int32).reshape(-1, 3)
        sent_ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=sent_ptr[1:])
        with open(paths["npz"], "wb") as handle:
            save_npz(
                handle,
                {
                    "sent_ptr": sent_ptr,
                    "starts": rows[:, 0].astype(np.int32),
                    "ends": rows[:, 1].astype(np.int32),
                    "kinds": rows[:, 2].astype(np.uint8),
                },
            )
        os.replace(paths["npz"], self._path)
        self._scratch.discard()

    def abort(self) -> None:
        """Drop everything written so far; this never raises."""
        self._scratch.discard()


@dataclass(frozen=True)
class KnowledgeSpans:
    """Knowledge spans of every sentence of one prefix (see the module docstring for the arrays)."""

    sent_ptr: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    kinds: np.ndarray
    _corpus: Dict[int, Tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.sent_ptr) - 1

    def corpus_spans(
        self, kind: int, sentence_offsets: np.ndarray, ids: np.ndarray, is_continuation: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """(starts, ends) int64 of the spans of `kind` as token offsets into the whole corpus: widened to whole
        words, then every span overlapping an earlier kept one dropped, so both arrays are sorted and disjoint.

        `sentence_offsets`: the corpus's sentence pointers; `ids`: its token ids; `is_continuation`: bool per id, a
        `##` token (it continues the word before it). A sample then finds its spans with two binary searches.
        Computed once per kind and kept (16 bytes per span; the splits of one corpus share them).
        """
        cached = self._corpus.get(kind)
        if cached is None:
            chosen = (self.kinds == kind).nonzero()[0]
            sentence = self.sent_ptr.searchsorted(chosen, side="right") - 1
            offsets = np.asarray(sentence_offsets, dtype=np.int64)
            sentence_starts, sentence_ends = offsets[sentence], offsets[sentence + 1]
            starts = self.starts[chosen] + sentence_starts
            ends = self.ends[chosen] + sentence_starts
            _widen_to_words(starts, ends, sentence_starts, sentence_ends, ids, is_continuation)
            keep = _without_overlaps(starts, ends)
            cached = self._corpus[kind] = (starts[keep], ends[keep])
        return cached

    def spans_of_sentence(self, sentence: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, kinds) of sentence `sentence`, token offsets within that sentence."""
        begin, end = self.sent_ptr[sentence], self.sent_ptr[sentence + 1]
        return self.starts[begin:end], self.ends[begin:end], self.kinds[begin:end]


def _widen_to_words(
    starts: np.ndarray,
    ends: np.ndarray,
    sentence_starts: np.ndarray,
    sentence_ends: np.ndarray,
    ids: np.ndarray,
    is_continuation: np.ndarray,
) -> None:
    """Move, in place, each start left and each end right (within its sentence) until neither cuts a word.

    Spans from the POS tagger and the masking's words come from the same segmentation and agree almost always;
    a user-dictionary entity can start or end inside a word. Each pass moves only the spans still cutting one.
    """
    moving = np.flatnonzero(starts > sentence_starts)
    while len(moving):
        moving = moving[is_continuation[ids[starts[moving]]]]
        starts[moving] -= 1
        moving = moving[starts[moving] > sentence_starts[moving]]
    moving = np.flatnonzero(ends < sentence_ends)
    while len(moving):
        moving = moving[is_continuation[ids[ends[moving]]]]
        ends[moving] += 1
        moving = moving[ends[moving] < sentence_ends[moving]]


def _without_overlaps(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """bool keep-mask over spans sorted by start: a span overlapping an earlier kept one is dropped.

    Overlaps are rare (a dictionary entity over a tagged one, two spans widened into one word), so only the spans
    that overlap some earlier span are walked in Python.
    """
    keep = np.ones(len(starts), dtype=bool)
    if len(starts) < 2:
        return keep
    overlapping = np.flatnonzero(starts[1:] < np.maximum.accumulate(ends)[:-1]) + 1
    for index in overlapping.tolist():
        previous = index - 1
        while not keep[previous]:
            previous -= 1
        keep[index] = starts[index] >= ends[previous]  # kept spans are disjoint: the last kept one ends last
    return keep


def load_knowledge_spans(prefix: str, sentence_lengths: Optional[np.ndarray] = None) -> Optional[KnowledgeSpans]:
    """Spans of `prefix`, or None when `<prefix>_knowledge.npz` does not exist.

    Validated against `sentence_lengths` (the indexed dataset's `sizes`; read from `<prefix>_idx.npz` when omitted
    and that file exists): a different sentence count or a span past its sentence's end raises ToolkitError.
    """
    path = knowledge_path(prefix)
    if not path.is_file():
        return None
    arrays = load_npz_arrays(path, SPAN_ARRAYS)
    spans = KnowledgeSpans(
        sent_ptr=np.asarray(arrays["sent_ptr"], np.int64),
        starts=np.asarray(arrays["starts"], np.int32),
        ends=np.asarray(arrays["ends"], np.int32),
        kinds=np.asarray(arrays["kinds"], np.uint8),
    )
    if sentence_lengths is None:
        idx_path = Path(prefix + IDX_SUFFIX)
        if idx_path.is_file():
            sentence_lengths = load_npz_arrays(idx_path, ("lens",))["lens"]
    _validate(path, spans, sentence_lengths)
    return spans


def _validate(path: Path, spans: KnowledgeSpans, sentence_lengths: Optional[np.ndarray]) -> None:
    ptr, total = spans.sent_ptr, len(spans.starts)
    if len(ptr) == 0 or ptr[0] != 0 or ptr[-1] != total or np.any(np.diff(ptr) < 0):
        raise ToolkitError(f"{path}: 'sent_ptr' must rise from 0 to the span count {total}; the file is corrupt")
    if not len(spans.ends) == len(spans.kinds) == total:
        raise ToolkitError(f"{path}: 'starts', 'ends' and 'kinds' differ in length; the file is corrupt")
    if np.any(spans.starts < 0) or np.any(spans.ends <= spans.starts):
        raise ToolkitError(f"{path}: a span has start < 0 or end <= start; the file is corrupt")
    if sentence_lengths is None:
        return
    if len(sentence_lengths) != len(spans):
        raise ToolkitError(
            f"{path}: spans for {len(spans)} sentences but the indexed dataset has {len(sentence_lengths)}; "
            "the files do not belong together (re-run create_pretraining_data.py --knowledge_spans)"
        )
    limits = np.repeat(np.asarray(sentence_lengths, np.int64), np.diff(ptr))
    if np.any(spans.ends > limits):
        raise ToolkitError(f"{path}: a span ends past its sentence; the files do not belong together")
