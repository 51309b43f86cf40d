"""Stage 1: raw text files (one sentence per line, blank line between documents) -> JSON lines `{"text": doc}`.

python data_tools/trans_to_json.py --input_path ./clue_corpus_small_14g --output_path clue_corpus_small_14g.jsonl
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional, Sequence

if __name__ == "__main__" and not __package__:
    # Run as a file: sys.path[0] is data_tools/, whose module names could shadow top-level ones; use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from ernie1.common.errors import ToolkitError, run_cli

# The external-memory shuffle keeps at most about this many bytes of lines in memory at once.
SHUFFLE_BUCKET_BYTES = 256 << 20


@dataclass(frozen=True)
class ConvertOptions:
    json_key: str = "text"
    doc_spliter: str = ""
    min_doc_length: int = 10


@dataclass
class FileStats:
    """What converting one input file produced."""

    documents: int = 0
    short_documents: int = 0
    undecodable_lines: int = 0
    unreadable_files: int = 0
    bytes_read: int = 0

    def add(self, other: "FileStats") -> None:
        self.documents += other.documents
        self.short_documents += other.short_documents
        self.undecodable_lines += other.undecodable_lines
        self.unreadable_files += other.unreadable_files
        self.bytes_read += other.bytes_read


def iter_documents(handle: BinaryIO, options: ConvertOptions, stats: FileStats) -> Iterator[str]:
    """Documents of one binary stream: a line equal (stripped) to doc_spliter ends one; bad UTF-8 lines are counted."""
    lines: List[str] = []
    for raw in handle:
        stats.bytes_read += len(raw)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.undecodable_lines += 1
            continue
        if line.strip() == options.doc_spliter:
            if lines:
                yield "".join(lines)
            lines = []
            continue
        lines.append(line.rstrip("\r\n") + "\n")
    if lines:
        yield "".join(lines)


def convert_file(source: Path, destination: Path, options: ConvertOptions) -> FileStats:
    """Write the long-enough documents of `source` as JSON lines to `destination`."""
    stats = FileStats()
    try:
        handle = open(source, "rb")
    except OSError:
        # An unreadable input file is counted, not fatal; write errors below do stop the run.
        stats.unreadable_files += 1
        destination.write_bytes(b"")
        return stats
    with handle, open(destination, "w", encoding="utf-8") as out:
        for document in iter_documents(handle, options, stats):
            if len(document) > options.min_doc_length:
                out.write(json.dumps({options.json_key: document}, ensure_ascii=False) + "\n")
                stats.documents += 1
            else:
                stats.short_documents += 1
    return stats


def list_input_files(input_path: str) -> List[Path]:
    """The input file, or every regular file under the directory (recursively, sorted, hidden entries skipped)."""
    root = Path(input_path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ToolkitError(f"--input_path {input_path}: no such file or directory")
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
        files.extend(Path(directory) / name for name in sorted(names) if not name.startswith("."))
    if not files:
        raise ToolkitError(f"--input_path {input_path}: directory contains no files")
    return files


def _convert_job(job: tuple) -> FileStats:
    source, destination, options = job
    return convert_file(source, destination, options)


def shuffle_lines(source: Path, destination: Path, seed: int) -> None:
    """Uniform, seeded line shuffle with bounded memory: scatter lines into random buckets, shuffle each in memory."""
    num_buckets = max(1, -(-source.stat().st_size // SHUFFLE_BUCKET_BYTES))
    rng = random.Random(seed)
    bucket_dir = Path(tempfile.mkdtemp(prefix=".shuffle-", dir=destination.parent))
    try:
        buckets = [open(bucket_dir / f"{i}", "wb") for i in range(num_buckets)]
        with open(source, "rb") as handle:
            for line in handle:
                buckets[rng.randrange(num_buckets)].write(line)
        for bucket in buckets:
            bucket.close()
        with open(destination, "wb") as out:
            for i in range(num_buckets):
                lines = (bucket_dir / f"{i}").read_bytes().splitlines(keepends=True)
                rng.shuffle(lines)
                out.writelines(lines)
    finally:
        shutil.rmtree(bucket_dir, ignore_errors=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_path", required=True, help="a text file, or a directory walked recursively")
    parser.add_argument("--output_path", required=True, help="merged .jsonl file (a directory with --no-merge)")
    parser.add_argument("--json_key", default="text", help="key of the document text in each JSON line")
    parser.add_argument("--doc_spliter", default="", help="a line equal to this (stripped) ends a document")
    parser.add_argument("--min_doc_length", type=int, default=10, help="keep documents longer than this (chars)")
    parser.add_argument("--workers", type=int, default=1, help="processes, one input file at a time each")
    parser.add_argument("--log_interval", type=int, default=1, help="print progress every N files")
    parser.add_argument("--no-merge", dest="no_merge", action="store_true", help="keep one .jsonl per input file")
    parser.add_argument("--no-shuffle", dest="no_shuffle", action="store_true", help="keep the input order")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the deterministic shuffle")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise ToolkitError(f"--workers {args.workers}: must be at least 1")
    if args.log_interval < 1:
        raise ToolkitError(f"--log_interval {args.log_interval}: must be at least 1")
    return args


def _part_names(files: List[Path], input_path: str) -> List[Path]:
    """Relative output names mirroring the input tree (`a/b.txt` -> `a/b.txt.jsonl`)."""
    root = Path(input_path)
    if root.is_file():
        return [Path(root.name + ".jsonl")]
    return [Path(str(path.relative_to(root)) + ".jsonl") for path in files]


def _make_output_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ToolkitError(f"--output_path: cannot create {directory} ({error.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise ToolkitError(f"--output_path: directory {directory} is not writable")


def _convert_all(files: List[Path], parts: List[Path], args: argparse.Namespace) -> FileStats:
    options = ConvertOptions(args.json_key, args.doc_spliter, args.min_doc_length)
    jobs = [(source, part, options) for source, part in zip(files, parts)]
    for part in parts:
        part.parent.mkdir(parents=True, exist_ok=True)
    total = FileStats()
    start = time.perf_counter()
    pool = multiprocessing.Pool(args.workers) if args.workers > 1 and len(jobs) > 1 else None
    try:
        results = pool.imap(_convert_job, jobs) if pool else map(_convert_job, jobs)
        for done, stats in enumerate(results, start=1):
            total.add(stats)
            if done % args.log_interval == 0 or done == len(jobs):
                elapsed = max(time.perf_counter() - start, 1e-9)
                print(
                    f"processed {done}/{len(jobs)} files, {total.documents} documents, "
                    f"{total.bytes_read / elapsed / 1e6:.2f} MB/s",
                    file=sys.stderr,
                )
    finally:
        if pool:
            pool.terminate()
            pool.join()
    return total


def _merge_parts(parts: List[Path], output: Path, shuffle: bool, seed: int, scratch: Path) -> None:
    merged = scratch / "merged.jsonl"
    with open(merged, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out)
    if shuffle:
        shuffled = scratch / "shuffled.jsonl"
        shuffle_lines(merged, shuffled, seed)
        merged = shuffled
    os.replace(merged, output)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; see `--help`."""
    args = parse_args(argv)
    files = list_input_files(args.input_path)
    output = Path(args.output_path)
    if not args.no_merge and not output.name.endswith(".jsonl"):
        output = output.with_name(output.name + ".jsonl")
    output_dir = output if args.no_merge else output.parent
    _make_output_dir(output_dir)
    # Parts and shuffle buckets go to a scratch folder beside the output, so the final rename stays on one filesystem
    # and a failed run leaves nothing under the output name.
    scratch = Path(tempfile.mkdtemp(prefix=".trans_to_json-", dir=output_dir))
    try:
        parts = [scratch / "parts" / name for name in _part_names(files, args.input_path)]
        stats = _convert_all(files, parts, args)
        if stats.documents == 0:
            raise ToolkitError(
                f"--input_path {args.input_path}: no document longer than --min_doc_length {args.min_doc_length} "
                f"chars ({stats.short_documents} shorter, {stats.undecodable_lines} undecodable lines skipped)"
            )
        if args.no_merge:
            for part in parts:
                target = output / part.relative_to(scratch / "parts")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)
        else:
            _merge_parts(parts, output, shuffle=not args.no_shuffle, seed=args.seed, scratch=scratch)
    except OSError as error:
        raise ToolkitError(f"--output_path {args.output_path}: cannot write ({error.strerror})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"trans_to_json: {len(files)} files, {stats.documents} documents written to {output}, "
        f"{stats.short_documents} short documents dropped, {stats.undecodable_lines} undecodable lines skipped, "
        f"{stats.unreadable_files} unreadable files skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
