"""Stage 1 of preprocessing: raw text files (one sentence per line, blank line between documents) -> JSON lines.

Each document becomes one line `{"<json_key>": "<sentence>\\n<sentence>\\n..."}`. Files are converted one per task
(optionally over a process pool) into parts in a scratch folder beside the output, then merged and shuffled with a
seeded, bounded-memory shuffle; the output appears under its final name only at the end (a rename).
"""

from __future__ import annotations

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
from typing import BinaryIO, Iterator, List

from ernie1.common.errors import ToolkitError, ignore_interrupts
from ernie1.common.files import make_output_dir
from ernie1.common.formats import JSONL_SUFFIX

# The external-memory shuffle keeps at most about this many bytes of lines in memory at once.
SHUFFLE_BUCKET_BYTES = 256 << 20


@dataclass(frozen=True)
class ConvertOptions:
    """How documents are cut and which are kept."""

    json_key: str = "text"
    doc_spliter: str = ""
    min_doc_length: int = 10


@dataclass(frozen=True)
class OutputOptions:
    """Where and how the JSON lines are written."""

    output: Path
    merge: bool = True
    shuffle: bool = True
    seed: int = 1234
    workers: int = 1
    log_interval: int = 1


@dataclass
class FileStats:
    """What converting one input file (or, summed, all of them) produced."""

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


def part_names(files: List[Path], input_path: str) -> List[Path]:
    """Relative output names mirroring the input tree (`a/b.txt` -> `a/b.txt.jsonl`)."""
    root = Path(input_path)
    if root.is_file():
        return [Path(root.name + JSONL_SUFFIX)]
    return [Path(str(path.relative_to(root)) + JSONL_SUFFIX) for path in files]


def _convert_job(job: tuple) -> FileStats:
    source, destination, options = job
    return convert_file(source, destination, options)


def _convert_all(files: List[Path], parts: List[Path], options: ConvertOptions, output: OutputOptions) -> FileStats:
    jobs = [(source, part, options) for source, part in zip(files, parts)]
    for part in parts:
        part.parent.mkdir(parents=True, exist_ok=True)
    total = FileStats()
    start = time.perf_counter()
    use_pool = output.workers > 1 and len(jobs) > 1
    pool = multiprocessing.Pool(output.workers, initializer=ignore_interrupts) if use_pool else None
    try:
        results = pool.imap(_convert_job, jobs) if pool else map(_convert_job, jobs)
        for done, stats in enumerate(results, start=1):
            total.add(stats)
            if done % output.log_interval == 0 or done == len(jobs):
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


def output_files(input_path: str, files: List[Path], output: OutputOptions) -> List[Path]:
    """The files a run writes: the merged file, or one `.jsonl` per input file under the output directory."""
    if output.merge:
        return [output.output]
    return [output.output / name for name in part_names(files, input_path)]


def _refuse_overwriting_inputs(input_path: str, files: List[Path], output: OutputOptions) -> None:
    # The final rename would silently replace the input (or an earlier output now listed as an input).
    inputs = {path.resolve(): path for path in files}
    for target in output_files(input_path, files, output):
        source = inputs.get(target.resolve())
        if source is not None:
            raise ToolkitError(
                f"--output_path {output.output}: would overwrite the input file {source}; choose an output path "
                "outside the input"
            )


def convert_corpus(input_path: str, files: List[Path], options: ConvertOptions, output: OutputOptions) -> FileStats:
    """Convert `files` (listed from `input_path`) into `output.output`: one merged file, or a mirrored tree."""
    _refuse_overwriting_inputs(input_path, files, output)
    output_dir = output.output if not output.merge else output.output.parent
    make_output_dir(output_dir, "--output_path")
    # Parts and shuffle buckets go to a scratch folder beside the output, so the final rename stays on one filesystem
    # and a failed run leaves nothing under the output name.
    scratch = Path(tempfile.mkdtemp(prefix=".trans_to_json-", dir=output_dir))
    try:
        parts = [scratch / "parts" / name for name in part_names(files, input_path)]
        stats = _convert_all(files, parts, options, output)
        if stats.documents == 0:
            raise ToolkitError(
                f"--input_path {input_path}: no document longer than --min_doc_length {options.min_doc_length} "
                f"chars ({stats.short_documents} shorter, {stats.undecodable_lines} undecodable lines skipped)"
            )
        if output.merge:
            _merge_parts(parts, output.output, output.shuffle, output.seed, scratch)
        else:
            for part in parts:
                target = output.output / part.relative_to(scratch / "parts")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)
    except OSError as error:
        raise ToolkitError(f"--output_path {output.output}: cannot write ({error.strerror})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return stats
