"""The project's one error type for user mistakes, and the CLI wrapper that turns it into a one-line message."""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence


class ToolkitError(Exception):
    """A user mistake (bad flag, missing or malformed file): the message names the flag or file and what to do."""


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)`, printing `error: <message>` (one line, no traceback) for a ToolkitError; return the exit code."""
    try:
        return int(main(argv) or 0)
    except ToolkitError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class FieldError(ToolkitError):
    """A ToolkitError about configuration fields: `template` names each field as `{field}`, and the CLI layer
    renders the flag name its users typed (`--max_seq_len` for args.py, `--max_seq_length` for the Trainer)."""

    def __init__(self, field: str, template: str, *other_fields: str):
        self.field = field
        self.template = template
        self.fields = (field, *other_fields)
        super().__init__(self.render(lambda name: name))

    def render(self, flag_name: Callable[[str], str]) -> str:
        """The message with every named field replaced by `flag_name(field)`."""
        text = self.template
        for name in self.fields:
            text = text.replace("{" + name + "}", flag_name(name))
        return text
