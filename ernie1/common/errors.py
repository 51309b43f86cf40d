"""The project's one error type for user mistakes, and the CLI wrapper that turns it into a one-line message."""

from __future__ import annotations

import signal
import sys
from typing import Callable, Optional, Sequence


class ToolkitError(Exception):
    """A user mistake (bad flag, missing or malformed file): the message names the flag or file and what to do."""


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)`, printing `error: <message>` (one line, no traceback) for a ToolkitError; return the exit code."""
    try:
        return int(main(argv) or 0)
    except ToolkitError as error:
        # A configuration error names fields; a plain argparse CLI spells a field's flag `--<field>`.
        text = error.render(lambda field: f"--{field}") if isinstance(error, FieldError) else str(error)
        message = " ".join(text.split())
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


def ignore_interrupts() -> None:
    """Pool-worker initializer: Ctrl-C reaches the whole process group, but only the parent should handle it (one
    line, cleanup, exit 130, workers terminated); a worker that took it would print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
