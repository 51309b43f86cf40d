"""Deployment inputs: texts from arguments and from `--input_file` (one per line; `-` = stdin), taken as they are.

One output line per input line, so nothing is skipped silently: an empty text (an empty argument, a blank line) and a
line that is not UTF-8 are one-line errors naming the argument or the line, never a guess (U+FFFD) or a gap.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ernie1.common.errors import ToolkitError

STDIN = "-"


def _read_bytes(input_file: str) -> bytes:
    if input_file == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    path = Path(input_file)
    if not path.is_file():
        raise ToolkitError(f"--input_file {input_file}: no such file")
    return path.read_bytes()


def read_input_lines(input_file: str) -> List[str]:
    """Every line of `input_file` (stdin for `-`), stripped; errors name the line."""
    where = "--input_file - (stdin)" if input_file == STDIN else f"--input_file {input_file}"
    lines = []
    for number, raw in enumerate(_read_bytes(input_file).splitlines(), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ToolkitError(f"{where} line {number}: not UTF-8 text (byte {error.start + 1} of the line)") from None
        text = text.lstrip("\ufeff") if number == 1 else text
        if not text.strip():
            raise ToolkitError(f"{where} line {number}: empty line; every line is one input (remove blank lines)")
        lines.append(text.strip())
    if not lines:
        raise ToolkitError(f"{where}: no text in it (one text per line)")
    return lines


def read_texts(texts: Sequence[str], input_file: Optional[str]) -> List[str]:
    """Positional texts, then the lines of --input_file; an empty text is an error, not a skipped line."""
    for position, text in enumerate(texts, start=1):
        if not text.strip():
            raise ToolkitError(f"text argument {position} is empty; pass non-empty texts (or --input_file)")
    collected = [text.strip() for text in texts]
    if input_file:
        collected.extend(read_input_lines(input_file))
    return collected


def one_line(text: str) -> str:
    """`text` for an output line: its own line breaks would split one prediction over several lines."""
    return " ".join(text.splitlines())
