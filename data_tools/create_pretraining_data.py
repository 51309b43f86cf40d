"""Stage 2: JSON lines -> token ids `<prefix>_ids.npy` + index `<prefix>_idx.npz` (+ `<prefix>_knowledge.npz`).

    python -u data_tools/create_pretraining_data.py --model_name <dir or vocab.txt> --tokenizer_name ErnieTokenizer \\
        --input_path corpus.jsonl --split_sentences --chinese --cn_whole_word_segment --cn_seg_func jieba \\
        --output_prefix corpus --workers 8 --log_interval 10000
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

if __name__ == "__main__" and not __package__:
    # Run as a file: sys.path[0] is data_tools/, whose module names could shadow top-level ones; use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from ernie1.common.errors import ToolkitError, run_cli
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
from ernie1.text.documents import SkipCounter, iter_batches, iter_raw_lines, list_jsonl_inputs
from ernie1.text.tokenizer import extended_vocab_size

# Documents per task sent to a worker (the original used imap chunks of 256 as well).
BATCH_SIZE = 256
# Tasks in flight per worker: enough to keep workers busy, few enough that memory stays flat (Pool.imap would read
# the whole input into its task queue ahead of the workers).
TASKS_IN_FLIGHT_PER_WORKER = 4


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_argument_group("input and output")
    group.add_argument(
        "--model_name", required=True, help="directory with vocab.txt, a vocab file, or a built-in name"
    )
    group.add_argument("--tokenizer_name", required=True, help="ErnieTokenizer or BertTokenizer")
    group.add_argument("--input_path", required=True, help="a .jsonl file, or a directory of *.jsonl files")
    group.add_argument("--output_prefix", required=True, help="writes <prefix>_ids.npy and <prefix>_idx.npz")
    group.add_argument("--data_format", default="text", help="kept for compatibility; only JSON lines are read")
    group.add_argument("--json_key", default="text", help="key of the document text in each JSON line")
    group = parser.add_argument_group("text processing")
    group.add_argument("--split_sentences", action="store_true", help="one sentence per line (needs --chinese)")
    group.add_argument("--chinese", action="store_true", help="split sentences on newlines (no NLTK)")
    group.add_argument("--cn_whole_word_segment", action="store_true", help="mark whole words with ## (WWM)")
    group.add_argument("--cn_seg_func", default="jieba", help="word segmenter for WWM: jieba or rjieba")
    group.add_argument("--cn_splited", action="store_true", help="text is already segmented by --cn_split_dimer")
    group.add_argument("--cn_split_dimer", default=" ", help="word separator of pre-segmented text")
    group.add_argument("--append_eos", action="store_true", help="append eos ([SEP] for WordPiece) to each document")
    group.add_argument("--knowledge_spans", action="store_true", help="also write <prefix>_knowledge.npz")
    group.add_argument("--entity_dict", default=None, help="user entity list, one per line (--knowledge_spans)")
    group = parser.add_argument_group("runtime")
    group.add_argument("--workers", type=int, default=1, help="worker processes")
    group.add_argument("--log_interval", type=int, default=100, help="refresh the docs/s figure every N documents")
    args = parser.parse_args(argv)
    _check_args(args)
    return args


def _check_args(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise ToolkitError(f"--workers {args.workers}: must be at least 1")
    if args.log_interval < 1:
        raise ToolkitError(f"--log_interval {args.log_interval}: must be at least 1")
    if args.split_sentences and not args.chinese:
        # The original fell back to NLTK punkt (English); this toolkit targets Chinese text without that dependency.
        raise ToolkitError(
            "--split_sentences needs --chinese (sentences are split on newlines; NLTK is not supported)"
        )
    if args.entity_dict and not args.knowledge_spans:
        raise ToolkitError("--entity_dict is only used with --knowledge_spans; add that flag")
    if args.cn_splited and not args.cn_whole_word_segment:
        raise ToolkitError("--cn_splited only matters with --cn_whole_word_segment; add that flag or drop it")


def encode_config(args: argparse.Namespace) -> EncodeConfig:
    """The picklable per-worker configuration from the parsed flags."""
    return EncodeConfig(
        model_name=args.model_name,
        tokenizer_name=args.tokenizer_name,
        json_key=args.json_key,
        split_sentences=args.split_sentences,
        chinese=args.chinese,
        whole_word_segment=args.cn_whole_word_segment,
        cn_seg_func=args.cn_seg_func,
        cn_splited=args.cn_splited,
        cn_split_dimer=args.cn_split_dimer,
        append_eos=args.append_eos,
        knowledge_spans=args.knowledge_spans,
        entity_dict=args.entity_dict,
    )


def run_ordered(
    config: EncodeConfig, batches: Iterator[list], workers: int, local: Optional[DocumentEncoder] = None
) -> Iterator[BatchResult]:
    """Encode batches in input order, in-process for one worker or over a pool with a bounded number in flight."""
    if workers == 1:
        init_worker(config, local)
        yield from map(encode_batch, batches)
        return
    pool = multiprocessing.Pool(workers, initializer=init_worker, initargs=(config,))
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


class _Progress:
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

    def __init__(self, files: List[Path]):
        self._files = files
        self.sizes: collections.deque = collections.deque()

    def __iter__(self) -> Iterator[list]:
        for batch in iter_batches(iter_raw_lines(self._files), BATCH_SIZE):
            self.sizes.append(sum(len(raw) for _file, _line, raw in batch))
            yield batch


def _write_all(args, config, probe, files, writer, span_writer, skipped: SkipCounter) -> Totals:
    totals = Totals()
    batches = _SizedBatches(files)
    progress = _Progress(sum(path.stat().st_size for path in files), args.log_interval)
    try:
        for results in run_ordered(config, iter(batches), args.workers, probe):
            for result in results:
                if not isinstance(result, EncodedDocument):
                    file_index, line_number, reason = result
                    skipped.add(reason, f"{files[file_index]}:{line_number}")
                    continue
                totals.bytes += result.num_bytes
                if not result.sentences:
                    continue
                writer.add_document(result.sentences)
                if span_writer is not None:
                    for starts, ends, kinds in result.spans:
                        span_writer.add_sentence(starts, ends, kinds)
                        totals.spans += len(starts)
                totals.documents += 1
                totals.sentences += len(result.sentences)
                totals.tokens += sum(len(ids) for ids in result.sentences)
                progress.documents_done(totals.documents)
            progress.bytes_done(batches.sizes.popleft())
    finally:
        progress.close()
    return totals


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; see `--help`."""
    args = parse_args(argv)
    files = list_jsonl_inputs(args.input_path)
    config = encode_config(args)
    # Build one encoder here first: vocab, segmenter and entity-list mistakes then fail before any worker starts.
    probe = DocumentEncoder(config)
    dtype = ids_dtype_for_vocab(extended_vocab_size(probe.tokenizer))
    writer = IndexedDatasetWriter(args.output_prefix, dtype)
    span_writer = None
    skipped = SkipCounter()
    start = time.perf_counter()
    try:
        if args.knowledge_spans:
            span_writer = KnowledgeSpansWriter(args.output_prefix)
        totals = _write_all(args, config, probe, files, writer, span_writer, skipped)
        if totals.documents == 0:
            raise ToolkitError(
                f"--input_path {args.input_path}: no usable document (need JSON lines with a non-empty string under "
                f"--json_key {args.json_key}); {skipped.summary()}"
            )
        writer.finalize()
        if span_writer is not None:
            span_writer.finalize()
    except BaseException:
        writer.abort()
        if span_writer is not None:
            span_writer.abort()
        raise
    elapsed = max(time.perf_counter() - start, 1e-9)
    megabytes = totals.bytes / 1e6
    spans = f", {totals.spans} knowledge spans" if span_writer is not None else ""
    outputs = f"{args.output_prefix}_ids.npy ({dtype.name}), {args.output_prefix}_idx.npz"
    if span_writer is not None:
        outputs += f", {args.output_prefix}_knowledge.npz"
    print(
        f"create_pretraining_data: {totals.documents} docs, {totals.sentences} sentences, {totals.tokens} tokens"
        f"{spans}, {megabytes:.2f} MB in {elapsed:.1f} s ({megabytes / elapsed:.2f} MB/s, "
        f"{totals.documents / elapsed:.1f} docs/s, {args.workers} workers), {skipped.summary()}; wrote {outputs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
