"""Output directories and scratch files: how writers make room for their outputs and clean up after themselves."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Iterator, Sequence

from ernie1.common.errors import ToolkitError


def make_output_dir(directory: Path, label: str) -> None:
    """Create `directory` (and parents) and check it is writable; `label` starts the one-line error (flag, value)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ToolkitError(f"{label}: cannot create {directory} ({error.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise ToolkitError(f"{label}: directory {directory} is not writable")


@contextlib.contextmanager
def write_errors_as(label: str) -> Iterator[None]:
    """Turn an OSError of the enclosed writes (disk full, quota, read-only) into a one-line ToolkitError."""
    try:
        yield
    except OSError as error:
        raise ToolkitError(f"{label}: cannot write ({error.strerror or error})") from None


def remove_quietly(paths: Iterable[Path]) -> None:
    """Remove each existing file; errors are ignored (cleanup must never hide the error that caused it)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)


class ScratchFiles:
    """Binary scratch streams and temporary files named `<target>.tmp-<name>` beside a final output.

    `close()` flushes the streams (and may raise, e.g. on a full disk); `discard()` never raises and leaves none of
    the files behind, whatever state the writer was in.
    """

    def __init__(self, target: Path, streams: Sequence[str], temporaries: Sequence[str] = ()):
        self.paths: Dict[str, Path] = {
            name: target.with_name(f"{target.name}.tmp-{name}") for name in (*streams, *temporaries)
        }
        self.streams: Dict[str, BinaryIO] = {}
        try:
            for name in streams:
                self.streams[name] = open(self.paths[name], "wb")
        except BaseException:
            self.discard()
            raise

    def close(self) -> None:
        """Flush and close every stream."""
        for stream in self.streams.values():
            stream.close()

    def discard(self) -> None:
        """Close every stream (a flush that fails, e.g. on a full disk, still closes it), then remove every file."""
        for stream in self.streams.values():
            with contextlib.suppress(OSError):
                stream.close()
        remove_quietly(self.paths.values())
