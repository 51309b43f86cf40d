"""Stage 2 of preprocessing: JSON lines -> `<prefix>_ids.npy` + `<prefix>_idx.npz` (+ `<prefix>_knowledge.npz`).

Batches of raw lines go through `ernie1.text.document_encoder` in input order (in-process, or over a pool with a
bounded number of batches in flight, so memory stays flat), and the encoded documents stream into the writers of
`ernie1.data.indexed_dataset` and `ernie1.data.knowledge_spans`; outputs appear under their final names at the end.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np

from ernie1.common.errors import ToolkitError, ignore_interrupts
from ernie1.common.formats import IDS_SUFFIX, IDX_SUFFIX, KNOWLEDGE_SUFFIX
from ernie1.data.indexed_dataset import IndexedDatasetWriter, ids_dtype_for_vocab
from ernie1.data.knowledge_spans import KnowledgeSpansWriter
from ernie1.text.document_encoder import (
    BatchResult,
    DocumentEncoder,
    EncodeConfig,
    EncodedDocument,
    encode_batch,
    init_worker,
)
from ernie1.text.jsonl_corpus import (
    DEFAULT_MAX_LINE_BYTES,
    OversizedLine,
    SkipCounter,
    iter_batches,
    iter_raw_lines,
)
from ernie1.text.knowledge import ENTITY, PHRASE
from ernie1.text.tokenizer import extended_vocab_size

# Documents per task sent to a worker (the original used imap chunks of 256 as well).
BATCH_SIZE = 256
# Tasks in flight per worker: enough to keep workers busy, few enough that memory stays flat (Pool.imap would read
# the whole input into its task queue ahead of the workers).
TASKS_IN_FLIGHT_PER_WORKER = 4


def _init_pool_worker(config: EncodeConfig) -> None:
    ignore_interrupts()
    init_worker(config)


def run_ordered(
    config: EncodeConfig, batches: Iterator[list], workers: int, local: Optional[DocumentEncoder] = None
) -> Iterator[BatchResult]:
    """Encode batches in input order, in-process for one worker or over a pool with a bounded number in flight."""
    if workers == 1:
        init_worker(config, local)
        yield from map(encode_batch, batches)
        return
    pool = multiprocessing.Pool(workers, initializer=_init_pool_worker, initargs=(config,))
    try:
        pending: collections.deque = collections.deque()
        for batch in batches:
            pending.append(pool.apply_async(encode_batch, (batch,)))
            if len(pending) >= workers * TASKS_IN_FLIGHT_PER_WORKER:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


@dataclass
class Totals:
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    bytes: int = 0
    spans: int = 0
    entity_spans: int = 0
    phrase_spans: int = 0

    def spans_per_1000_tokens(self) -> str:
        """`entity spans per 1,000 tokens: 21.3, phrase spans per 1,000 tokens: 43.1`."""
        per_1000 = 1000.0 / max(self.tokens, 1)
        return (
            f"entity spans per 1,000 tokens: {self.entity_spans * per_1000:.1f}, "
            f"phrase spans per 1,000 tokens: {self.phrase_spans * per_1000:.1f}"
        )


class Progress:
    """A tqdm bar over input bytes (MB/s, ETA) with docs/s, on a terminal; elsewhere a plain line per log_interval."""

    def __init__(self, total_bytes: int, log_interval: int):
        self._interactive = sys.stderr.isatty()
        self._log_interval = log_interval
        self._start = time.perf_counter()
        self._bytes = 0
        self._bar = None
        if self._interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1000, file=sys.stderr)

    def documents_done(self, documents: int) -> None:
        if documents % self._log_interval:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        if self._bar is not None:
            self._bar.set_postfix(docs=documents, docs_per_s=f"{documents / elapsed:.0f}", refresh=False)
        else:
            print(
                f"processed {documents} docs ({documents / elapsed:.1f} docs/s, "
                f"{self._bytes / elapsed / 1e6:.2f} MB/s)",
                file=sys.stderr,
            )

    def bytes_done(self, num_bytes: int) -> None:
        self._bytes += num_bytes
        if self._bar is not None:
            self._bar.update(num_bytes)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _SizedBatches:
    """Batches of raw lines that remember each batch's byte size, in order, for the progress bar."""

    def __init__(self, files: List[Path], max_line_bytes: Optional[int]):
        self._files = files
        self._max_line_bytes = max_line_bytes
        self.sizes: collections.deque = collections.deque()

    def __iter__(self) -> Iterator[list]:
        for batch in iter_batches(iter_raw_lines(self._files, self._max_line_bytes), BATCH_SIZE):
            self.sizes.append(sum(raw.size if isinstance(raw, OversizedLine) else len(raw) for _f, _l, raw in batch))
            yield batch


@dataclass
class PreprocessResult:
    """What one run wrote: counts, skipped lines, the ids dtype, the files and the time it took."""

    totals: Totals
    skipped: SkipCounter
    dtype: np.dtype
    outputs: List[str] = field(default_factory=list)
    seconds: float = 0.0
    knowledge_spans: bool = False

    def summary(self, workers: int) -> str:
        """The one-line summary the CLI prints."""
        totals, elapsed = self.totals, max(self.seconds, 1e-9)
        megabytes = totals.bytes / 1e6
        spans = f", {totals.spans} knowledge spans ({totals.spans_per_1000_tokens()})" if self.knowledge_spans else ""
        outputs = ", ".join([f"{self.outputs[0]} ({self.dtype.name})", *self.outputs[1:]])
        return (
            f"create_pretraining_data: {totals.documents} docs, {totals.sentences} sentences, {totals.tokens} tokens"
            f"{spans}, {megabytes:.2f} MB in {elapsed:.1f} s ({megabytes / elapsed:.2f} MB/s, "
            f"{totals.documents / elapsed:.1f} docs/s, {workers} workers), {self.skipped.summary()}; wrote {outputs}"
        )


def _write_all(
    config: EncodeConfig,
    probe: DocumentEncoder,
    files: List[Path],
    workers: int,
    log_interval: int,
    max_line_bytes: Optional[int],
    writer: IndexedDatasetWriter,
    span_writer: Optional[KnowledgeSpansWriter],
    skipped: SkipCounter,
) -> Totals:
    totals = Totals()
    batches = _SizedBatches(files, max_line_bytes)
    progress = Progress(sum(path.stat().st_size for path in files), log_interval)
    # closing(): the bar is closed and the pool is gone before the caller cleans up, on an error or Ctrl-C too.
    encoded = run_ordered(config, iter(batches), workers, probe)
    with contextlib.closing(progress), contextlib.closing(encoded) as stream:
        for results in stream:
            for result in results:
                if not isinstance(result, EncodedDocument):
                    file_index, line_number, reason = result
                    skipped.add(reason, f"{files[file_index]}:{line_number}")
                    continue
                totals.bytes += result.num_bytes
                writer.add_document(result.sentences)
                if span_writer is not None:
                    for starts, ends, kinds in result.spans:
                        span_writer.add_sentence(starts, ends, kinds)
                        totals.spans += len(starts)
                        totals.entity_spans += int(np.count_nonzero(kinds == ENTITY))
                        totals.phrase_spans += int(np.count_nonzero(kinds == PHRASE))
                totals.documents += 1
                totals.sentences += len(result.sentences)
                totals.tokens += sum(len(ids) for ids in result.sentences)
                progress.documents_done(totals.documents)
            progress.bytes_done(batches.sizes.popleft())
    return totals


def write_pretraining_data(
    input_path: str,
    files: List[Path],
    config: EncodeConfig,
    output_prefix: str,
    workers: int = 1,
    log_interval: int = 100,
    max_line_bytes: Optional[int] = DEFAULT_MAX_LINE_BYTES,
) -> PreprocessResult:
    """Encode the JSON lines of `files` (listed from `input_path`) into the files of `output_prefix`.

    Lines longer than `max_line_bytes` are skipped unread and counted (None: no limit).
    """
    # Build one encoder here first: vocab, segmenter and entity-list mistakes then fail before any worker starts.
    probe = DocumentEncoder(config)
    dtype = ids_dtype_for_vocab(extended_vocab_size(probe.tokenizer))
    writer = IndexedDatasetWriter(output_prefix, dtype)
    span_writer = None
    skipped = SkipCounter()
    start = time.perf_counter()
    try:
        if config.knowledge_spans:
            span_writer = KnowledgeSpansWriter(output_prefix)
        totals = _write_all(config, probe, files, workers, log_interval, max_line_bytes, writer, span_writer, skipped)
        if totals.documents == 0:
            raise ToolkitError(
                f"--input_path {input_path}: no usable document (need JSON lines with a non-empty string under "
                f"--json_key {config.json_key}); {skipped.summary()}"
            )
        writer.finalize()
        if span_writer is not None:
            span_writer.finalize()
    except BaseException:
        writer.abort()
        if span_writer is not None:
            span_writer.abort()
        raise
    outputs = [output_prefix + IDS_SUFFIX, output_prefix + IDX_SUFFIX]
    if span_writer is not None:
        outputs.append(output_prefix + KNOWLEDGE_SUFFIX)
    return PreprocessResult(totals, skipped, dtype, outputs, time.perf_counter() - start, span_writer is not None)
