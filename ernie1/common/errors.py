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
