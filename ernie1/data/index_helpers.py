"""Typed wrapper over the C++ index helpers (`ernie1.data._index_helpers`, compiled from `helpers.cpp` at install).

Each function validates shapes and dtypes, converts to the exact dtypes the native code reads, and turns the
problems a user can cause (a corpus with no usable document) into a `ToolkitError` that says what to change.
The native functions reproduce the original `tool_helpers.helpers` outputs bit for bit (tests compare them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Optional

import numpy as np

from ernie1.common.errors import ToolkitError

# The original passes these in place of "no limit" (REFERENCE §3); they also decide the cache file name.
NUM_EPOCHS_SENTINEL = np.iinfo(np.int32).max - 1
MAX_NUM_SAMPLES_SENTINEL = np.iinfo(np.int64).max - 1
LONG_SENTENCE_LEN = 512
# Part of every index-map cache key: bump it whenever build_mapping (helpers.cpp) gives different rows for the same
# inputs, so caches built by the old code are not reused.
MAPPING_VERSION = 1
MAX_SEED = np.iinfo(np.int32).max - 1


def _native():
    try:
        from ernie1.data import _index_helpers
    except ImportError as error:
        raise ToolkitError(
            f"the C++ index helper ernie1.data._index_helpers is not built ({error}); run `pip install -e .` in the "
            "repository root (needs a C++17 compiler and pybind11)"
        ) from None
    return _index_helpers


def _vector(name: str, values, dtype) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def _limits(num_epochs: Optional[int], max_num_samples: Optional[int]) -> tuple[int, int]:
    if num_epochs is None and max_num_samples is None:
        raise ValueError("give num_epochs or max_num_samples")
    epochs = NUM_EPOCHS_SENTINEL if num_epochs is None else int(num_epochs)
    samples = MAX_NUM_SAMPLES_SENTINEL if max_num_samples is None else int(max_num_samples)
    if epochs < 1 or samples < 1:
        raise ValueError(f"num_epochs and max_num_samples must be positive, got {epochs} and {samples}")
    return epochs, samples


def _check_seed(seed: int) -> int:
    if not 0 <= int(seed) <= MAX_SEED:
        raise ToolkitError(f"--seed {seed}: must be in [0, {MAX_SEED}]")
    return int(seed)


@dataclass(frozen=True)
class DocumentStats:
    """Why documents can or cannot form samples (the original's silent 'mapping for 0 samples', #2430)."""

    num_documents: int
    empty: int
    fewer_than_min: int
    with_long_sentence: int
    usable: int


def document_stats(doc_idx: np.ndarray, sizes: np.ndarray, min_num_sent: int) -> DocumentStats:
    """Count the documents build_mapping would use; O(sentences) in numpy, no native call."""
    docs = np.asarray(doc_idx, dtype=np.int64)
    sizes = np.asarray(sizes)
    counts = np.diff(docs)
    # Longest sentence per non-empty document, one value per document (no per-sentence temporary).
    filled = counts > 0
    longest = np.zeros(len(counts), dtype=np.int64)
    if np.any(filled):
        first, last = int(docs[0]), int(docs[-1])
        longest[filled] = np.maximum.reduceat(np.asarray(sizes[first:last]), docs[:-1][filled] - first)
    long_in_doc = longest > LONG_SENTENCE_LEN
    flagged = long_in_doc & (counts > 1)
    usable = (counts >= min_num_sent) & ~flagged
    return DocumentStats(
        num_documents=len(counts),
        empty=int(np.count_nonzero(counts == 0)),
        fewer_than_min=int(np.count_nonzero(counts < min_num_sent)),
        with_long_sentence=int(np.count_nonzero(flagged)),
        usable=int(np.count_nonzero(usable)),
    )


def no_usable_document_message(stats: DocumentStats, min_num_sent: int) -> str:
    """The one-line explanation for a corpus (or split) in which no document can form a sample."""
    if stats.num_documents == 0:
        return "the split holds no document"
    if min_num_sent >= 2 and stats.fewer_than_min == stats.num_documents:
        return (
            f"no document has >= {min_num_sent} sentences: use binary_head=False or give documents of several "
            "sentences (one sentence per line, blank line between documents)"
        )
    return (
        f"no usable document among {stats.num_documents}: {stats.fewer_than_min} have fewer than {min_num_sent} "
        f"sentences and {stats.with_long_sentence} have a sentence longer than {LONG_SENTENCE_LEN} tokens "
        "(put one sentence per line, blank line between documents)"
    )


def _raise_if_no_usable_document(error: ValueError, docs: np.ndarray, sizes: np.ndarray, min_num_sent: int) -> None:
    # The native code only says that nothing was usable; the numpy statistics say why, for the user.
    if str(error).startswith("no usable document"):
        stats = document_stats(docs, sizes, min_num_sent)
        raise ToolkitError(no_usable_document_message(stats, min_num_sent)) from None


@dataclass(frozen=True)
class _MappingArgs:
    docs: np.ndarray
    lens: np.ndarray
    native_args: tuple  # num_epochs .. min_num_sent, in the native functions' order


def _mapping_args(
    doc_idx, sizes, max_seq_length, short_seq_prob, seed, min_num_sent, num_epochs, max_num_samples, verbose
) -> _MappingArgs:
    docs = _vector("doc_idx", doc_idx, np.int64)
    lens = _vector("sizes", sizes, np.int32)
    if len(docs) < 1:
        raise ValueError("doc_idx needs at least one entry")
    if not 0.0 <= float(short_seq_prob) <= 1.0:
        raise ToolkitError(f"--short_seq_prob {short_seq_prob}: must be in [0, 1]")
    if int(max_seq_length) < 2:
        raise ToolkitError(f"--max_seq_length: the index map needs a length >= 2, got {max_seq_length}")
    if int(min_num_sent) < 1:
        raise ValueError(f"min_num_sent must be >= 1, got {min_num_sent}")
    epochs, samples = _limits(num_epochs, max_num_samples)
    native_args = (
        epochs,
        samples,
        int(max_seq_length),
        float(short_seq_prob),
        _check_seed(seed),
        bool(verbose),
        int(min_num_sent),
    )
    return _MappingArgs(docs, lens, native_args)


def build_mapping(
    doc_idx: np.ndarray,
    sizes: np.ndarray,
    *,
    max_seq_length: int,
    short_seq_prob: float,
    seed: int,
    min_num_sent: int,
    num_epochs: Optional[int] = None,
    max_num_samples: Optional[int] = None,
    verbose: bool = False,
) -> np.ndarray:
    """[N,3] uint32 (uint64 past 2**32 sentences) shuffled rows (start_sentence, end_sentence_exclusive, target_len).

    `doc_idx` int64 [D+1] are global sentence boundaries (a split's slice of the corpus' `docs`); whole epochs are
    emitted until `max_num_samples` is reached, so N >= max_num_samples.
    """
    args = _mapping_args(
        doc_idx, sizes, max_seq_length, short_seq_prob, seed, min_num_sent, num_epochs, max_num_samples, verbose
    )
    try:
        return _native().build_mapping(args.docs, args.lens, *args.native_args)
    except ValueError as error:
        _raise_if_no_usable_document(error, args.docs, args.lens, int(min_num_sent))
        raise


def write_mapping(
    handle: BinaryIO,
    doc_idx: np.ndarray,
    sizes: np.ndarray,
    *,
    max_seq_length: int,
    short_seq_prob: float,
    seed: int,
    min_num_sent: int,
    num_epochs: Optional[int] = None,
    max_num_samples: Optional[int] = None,
    verbose: bool = False,
) -> tuple[int, int]:
    """Write `build_mapping`'s map as a .npy file into `handle` (a binary file open for writing, at its start).

    The file is byte for byte what `np.save` writes for the array `build_mapping` returns, but the rows never
    exist twice in memory: the native code writes them as its shuffle settles them, from a second thread, and frees
    them before returning. Returns the map's shape; a failed write raises OSError.
    """
    args = _mapping_args(
        doc_idx, sizes, max_seq_length, short_seq_prob, seed, min_num_sent, num_epochs, max_num_samples, verbose
    )
    # numpy pads the header so that the row count can grow in place: its length does not depend on the count.
    offset = len(_npy_header(np.uint32, 0))
    handle.flush()
    try:
        num_rows, wide = _native().write_mapping(handle.fileno(), offset, args.docs, args.lens, *args.native_args)
    except ValueError as error:
        _raise_if_no_usable_document(error, args.docs, args.lens, int(min_num_sent))
        raise
    header = _npy_header(np.uint64 if wide else np.uint32, num_rows)
    assert len(header) == offset, "the .npy header length changed with the row count"
    handle.seek(0)
    handle.write(header)
    handle.flush()
    return int(num_rows), 3


def _npy_header(dtype, num_rows: int) -> bytes:
    """The .npy version 1.0 header np.save writes for a C-ordered [num_rows, 3] array of `dtype`."""
    out = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (num_rows, 3)}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def build_blocks_mapping(
    doc_idx: np.ndarray,
    sizes: np.ndarray,
    titles_sizes: np.ndarray,
    *,
    max_seq_length: int,
    seed: int,
    num_epochs: Optional[int] = None,
    max_num_samples: Optional[int] = None,
    use_one_sent_blocks: bool = False,
    verbose: bool = False,
) -> np.ndarray:
    """[N,4] uint32/uint64 shuffled rows (start_sentence, end_sentence_exclusive, doc, block_id) (REALM/ICT blocks)."""
    docs = _vector("doc_idx", doc_idx, np.int64)
    lens = _vector("sizes", sizes, np.int32)
    titles = _vector("titles_sizes", titles_sizes, np.int32)
    if len(titles) < len(docs) - 1:
        raise ValueError(f"titles_sizes needs one entry per document ({len(docs) - 1}), got {len(titles)}")
    epochs, samples = _limits(num_epochs, max_num_samples)
    min_num_sent = 1 if use_one_sent_blocks else 2
    try:
        return _native().build_blocks_mapping(
            docs,
            lens,
            titles,
            epochs,
            samples,
            int(max_seq_length),
            _check_seed(seed),
            bool(verbose),
            bool(use_one_sent_blocks),
        )
    except ValueError as error:
        _raise_if_no_usable_document(error, docs, lens, min_num_sent)
        raise


def build_blending_indices(weights: np.ndarray, size: int, verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(dataset_index uint8 [size], dataset_sample_index int64 [size]) for normalised `weights` (< 256 datasets)."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.ndim != 1 or not 1 <= len(weights) <= 255:
        raise ValueError(f"weights must be 1-D with 1 to 255 entries, got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {weights.tolist()}")
    dataset_index = np.zeros(int(size), dtype=np.uint8)
    dataset_sample_index = np.zeros(int(size), dtype=np.int64)
    _native().build_blending_indices(
        dataset_index, dataset_sample_index, weights, len(weights), int(size), bool(verbose)
    )
    return dataset_index, dataset_sample_index


def build_sample_idx(
    sizes: np.ndarray, doc_idx: np.ndarray, seq_length: int, num_epochs: int, tokens_per_epoch: int
) -> np.ndarray:
    """[num_samples+1, 2] int32 rows (position in doc_idx, token offset) where each GPT sample starts."""
    return _native().build_sample_idx(
        _vector("sizes", sizes, np.int32),
        _vector("doc_idx", doc_idx, np.int32),
        int(seq_length),
        int(num_epochs),
        int(tokens_per_epoch),
    )
