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
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def ignore_interrupts() -> None:
    """Pool-worker initializer: Ctrl-C reaches the whole process group, but only the parent should handle it (one
    line, cleanup, exit 130, workers terminated); a worker that took it would print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
