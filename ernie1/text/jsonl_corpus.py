"""Lazy reading of JSON-lines corpora for create_pretraining_data: input listing, batching, skip accounting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional, Tuple, Union

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import JSONL_SUFFIX

# Longest JSON line read by default: memory per worker grows with the longest line (about 100 bytes per character
# with whole-word segmentation), so a runaway line (a whole dump on one line) is skipped instead of exhausting RAM.
DEFAULT_MAX_LINE_BYTES = 4_000_000
# Read size while skipping the rest of an over-long line.
_SKIP_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class OversizedLine:
    """Stands in for a line longer than the limit, which is skipped unread; `size` is its length in bytes."""

    size: int


# A raw input line and where it came from: (file index, 1-based line number, bytes or OversizedLine).
RawLine = Tuple[int, int, Union[bytes, OversizedLine]]


def list_jsonl_inputs(input_path: str) -> List[Path]:
    """`input_path` itself when it is a file, else the `*.jsonl` files of the directory (recursively, sorted)."""
    path = Path(input_path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ToolkitError(f"--input_path {input_path}: no such file or directory")
    files = sorted(p for p in path.rglob(f"*{JSONL_SUFFIX}") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ToolkitError(f"--input_path {input_path}: no *{JSONL_SUFFIX} files in this directory")
    return files


def iter_raw_lines(files: List[Path], max_line_bytes: Optional[int] = None) -> Iterator[RawLine]:
    """Every non-blank line of every file, lazily, with its location; with `max_line_bytes`, a longer line comes as
    an OversizedLine and is never held in memory."""
    for file_index, path in enumerate(files):
        try:
            handle = open(path, "rb")
        except OSError as error:
            raise ToolkitError(f"--input_path {path}: cannot read ({error.strerror})") from None
        with handle:
            lines = iter(handle) if max_line_bytes is None else _bounded_lines(handle, max_line_bytes)
            for line_number, raw in enumerate(lines, start=1):
                if isinstance(raw, OversizedLine) or raw.strip():
                    yield file_index, line_number, raw


def _bounded_lines(handle: BinaryIO, max_line_bytes: int) -> Iterator[Union[bytes, OversizedLine]]:
    while raw := handle.readline(max_line_bytes + 1):
        if len(raw) <= max_line_bytes or raw.endswith(b"\n"):
            yield raw
            continue
        size = len(raw)
        while not raw.endswith(b"\n") and (raw := handle.readline(_SKIP_CHUNK_BYTES)):
            size += len(raw)
        yield OversizedLine(size)


def iter_batches(lines: Iterator[RawLine], batch_size: int) -> Iterator[List[RawLine]]:
    """Group lines into lists of `batch_size` (the last may be shorter) without reading ahead further."""
    batch: List[RawLine] = []
    for line in lines:
        batch.append(line)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_json_text(raw: Union[bytes, OversizedLine], json_key: str) -> Tuple[Optional[str], Optional[str]]:
    """(text, None) for a usable line, else (None, reason) with reason one of SKIP_REASONS."""
    if isinstance(raw, OversizedLine):
        return None, "too_long"
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "undecodable"
    except json.JSONDecodeError:
        return None, "malformed"
    if not isinstance(record, dict) or json_key not in record:
        return None, "missing_key"
    text = record[json_key]
    if not isinstance(text, str):
        return None, "missing_key"
    try:
        # A lone surrogate (`"\\ud800"` is valid JSON) is no text: every later stage would fail on it.
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "surrogate"
    return text, None


SKIP_REASONS = {
    "undecodable": "not UTF-8",
    "malformed": "malformed JSON",
    "missing_key": "no string under --json_key",
    "surrogate": "lone surrogate escape",
    "too_long": "longer than --max_line_bytes",
    # Set by the encoder, not by parse_json_text: only whitespace, zero-width or control characters.
    "no_content": "no text after cleaning",
}


@dataclass
class SkipCounter:
    """Counts skipped lines per reason and remembers where the first one was."""

    counts: dict = field(default_factory=lambda: {reason: 0 for reason in SKIP_REASONS})
    first: Optional[str] = None

    def add(self, reason: str, location: str) -> None:
        self.counts[reason] += 1
        if self.first is None:
            self.first = f"{location} ({SKIP_REASONS[reason]})"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if self.total == 0:
            return "0 lines skipped"
        parts = ", ".join(f"{count} {SKIP_REASONS[reason]}" for reason, count in self.counts.items() if count)
        return f"{self.total} lines skipped ({parts}; first at {self.first})"
