"""Reading one local task file (classification rows, CoNLL, SQuAD JSON): every error names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, TypeVar

from ernie1.common.errors import ToolkitError

T = TypeVar("T")


def read_task_file(path: str, flag: Optional[str], parse: Callable[[str], List[T]], what: str) -> List[T]:
    """`parse` the UTF-8 text of `path` into items; errors start with `flag path` (`--train_file t.tsv: ...`)."""
    where = f"{flag} {path}" if flag else str(path)
    file_path = Path(path)
    if not file_path.is_file():
        raise ToolkitError(f"{where}: no such file")
    try:
        text = file_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ToolkitError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ToolkitError(f"{where}: cannot read it ({error.strerror})") from None
    if not text.strip():
        raise ToolkitError(f"{where}: the file is empty")
    try:
        items = parse(text)
    except ToolkitError as error:
        raise ToolkitError(f"{where}: {error}") from error
    if not items:
        raise ToolkitError(f"{where}: no {what} in the file")
    return items
