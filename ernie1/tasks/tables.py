"""Local classification files (TSV, CSV, JSONL) read into example dicts `{text, text_b?, label?, line}`.

Readers register under a format name and file suffixes; `read_examples` picks one by name or suffix and puts the
file's name in front of every error.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from ernie1.common.errors import ToolkitError
from ernie1.tasks.files import read_task_file
from ernie1.tasks.labels import preview

Example = Dict[str, Any]
READERS: Dict[str, Callable[[str], List[Example]]] = {}
FORMAT_BY_SUFFIX: Dict[str, str] = {}

TEXT_COLUMNS = ("text", "text_a", "sentence", "sentence1", "premise", "query")
TEXT_B_COLUMNS = ("text_b", "sentence2", "hypothesis")
LABEL_COLUMNS = ("label", "labels")
IGNORED_COLUMNS = ("qid", "id", "idx", "index")


def register_reader(name: str, suffixes: Iterable[str] = ()) -> Callable:
    """Decorator: register `reader(text) -> list of example dicts` under a format name (and file suffixes)."""

    def decorator(reader: Callable[[str], List[Example]]) -> Callable[[str], List[Example]]:
        READERS[name] = reader
        for suffix in suffixes:
            FORMAT_BY_SUFFIX[suffix] = name
        return reader

    return decorator


def read_examples(path: str, fmt: Optional[str] = None, flag: Optional[str] = None) -> List[Example]:
    """Read a local data file into example dicts (with `line`), by format name or file suffix; errors name the file.

    `flag` is how the caller's user named the file (e.g. `--train_file`); `fmt` names a registered format.
    """
    where = f"{flag} {path}" if flag else str(path)
    if not Path(path).is_file():
        raise ToolkitError(f"{where}: no such file")
    name = fmt or FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
    if name is None:
        raise ToolkitError(f"{where}: cannot tell the format from the suffix; pass --file_format {'|'.join(READERS)}")
    if name not in READERS:
        raise ToolkitError(f"--file_format {name}: unknown; expected one of {', '.join(sorted(READERS))}")
    return read_task_file(path, flag, READERS[name], "examples")


def _row_to_example(cells: List[str], header: Optional[Dict[str, Any]], line: int) -> Example:
    if header is None:
        # Headerless rows by position: text | text, label | text, text_b, label.
        if len(cells) == 1:
            return {"text": cells[0], "line": line}
        if len(cells) == 2:
            return {"text": cells[0], "label": cells[1], "line": line}
        if len(cells) == 3:
            return {"text": cells[0], "text_b": cells[1], "label": cells[2], "line": line}
        raise ToolkitError(f"line {line}: {len(cells)} columns; expected text[, text_b], label or a header row")
    if len(cells) != len(header["__width__"]):
        raise ToolkitError(f"line {line}: {len(cells)} columns, but the header has {len(header['__width__'])}")
    example: Example = {"line": line}
    for key in ("text", "text_b", "label"):
        if key in header:
            example[key] = cells[header[key]]
    return example


def _parse_header(cells: List[str]) -> Optional[Dict[str, Any]]:
    lowered = [cell.strip().lower() for cell in cells]
    known = set(TEXT_COLUMNS + TEXT_B_COLUMNS + LABEL_COLUMNS + IGNORED_COLUMNS)
    if not lowered or not all(cell in known for cell in lowered):
        return None
    header: Dict[str, Any] = {"__width__": lowered}
    for key, names in (("text", TEXT_COLUMNS), ("text_b", TEXT_B_COLUMNS), ("label", LABEL_COLUMNS)):
        for index, cell in enumerate(lowered):
            if cell in names and key not in header:
                header[key] = index
    if "text" not in header:
        raise ToolkitError(f"the header {preview(cells)} has no text column; name one of {', '.join(TEXT_COLUMNS)}")
    return header


def _read_delimited(text: str, delimiter: str) -> List[Example]:
    examples: List[Example] = []
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = None
    first_row = True
    for cells in rows:
        if not cells or all(not cell.strip() for cell in cells):
            continue
        if first_row:
            first_row = False
            header = _parse_header(cells)
            if header is not None:
                continue
        examples.append(_row_to_example(cells, header, rows.line_num))
    return examples


@register_reader("tsv", suffixes=(".tsv",))
def read_tsv(text: str) -> List[Example]:
    """Tab-separated rows: text[, text_b], label, optionally under a header (label, text_a, qid, …)."""
    return _read_delimited(text, "\t")


@register_reader("csv", suffixes=(".csv",))
def read_csv(text: str) -> List[Example]:
    """Comma-separated rows (RFC 4180 quoting), same columns as TSV."""
    return _read_delimited(text, ",")


@register_reader("jsonl", suffixes=(".jsonl",))
def read_jsonl(text: str) -> List[Example]:
    """One JSON object per line with a text key (text, text_a, sentence, …), optional text_b and label."""
    examples: List[Example] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ToolkitError(f"line {line}: not valid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise ToolkitError(f"line {line}: expected a JSON object")
        examples.append(normalize_record(record, line))
    return examples


def text_fields(record: Dict[str, Any], line: int, with_label: bool = True) -> Example:
    """`{line, text?, text_b?, label?}` from the first present field of each known column name list."""
    example: Example = {"line": line}
    columns = (("text", TEXT_COLUMNS), ("text_b", TEXT_B_COLUMNS)) + (
        (("label", LABEL_COLUMNS),) if with_label else ()
    )
    for key, names in columns:
        for name in names:
            if record.get(name) is not None:
                example[key] = str(record[name])
                break
    return example


def normalize_record(record: Dict[str, Any], line: int) -> Example:
    """Map a dict with any of the known column names onto `text`, `text_b`, `label` (+ `line`)."""
    example = text_fields(record, line)
    if "text" not in example:
        raise ToolkitError(f"line {line}: no text field; use one of {', '.join(TEXT_COLUMNS)}")
    return example
