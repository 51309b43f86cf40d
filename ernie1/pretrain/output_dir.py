"""The run's output directory: created, checked writable, locked against a second run, resolved config saved.

The lock is an advisory `flock` on `output_dir/.ernie1.lock`, held by global rank 0 (the only rank that writes
checkpoints) for the whole run: the kernel releases it on any exit, kill -9 included, so a lock file left by a dead
process is stale by construction and simply taken over. All ranks learn the outcome, so none waits on a refused run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Iterator, Optional

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.common.formats import OUTPUT_DIR_LOCK_FILE, RESOLVED_CONFIG_FILE
from ernie1.pretrain.runtime import Placement, all_ranks_max, barrier

logger = logging.getLogger("ernie1")


class OutputDirLock:
    """An exclusive, process-lifetime lock on a directory; `acquire()` returns the holder's PID when refused."""

    def __init__(self, directory: str):
        self.path = Path(directory) / OUTPUT_DIR_LOCK_FILE
        self._fd: Optional[int] = None

    def acquire(self) -> Optional[int]:
        """Take the lock (None), or the PID of the live process holding it (0 if it did not say)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            return int(holder) if holder.isdigit() else 0
        previous = os.read(fd, 32).decode("ascii", "replace").strip()
        if previous.isdigit() and int(previous) != os.getpid():
            logger.info(f"{self.path}: stale lock of PID {previous} (no longer running) taken over")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return None

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with a run opening it)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _create(output_dir: str) -> None:
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise FieldError("output_dir", f"{{output_dir}} {output_dir}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise FieldError(
            "output_dir", f"{{output_dir}} {output_dir}: not writable ({error.strerror or error})"
        ) from None


def _claim(output_dir: str, lock: OutputDirLock) -> None:
    _create(output_dir)
    holder = lock.acquire()
    if holder is not None:
        who = f"PID {holder}" if holder else "another process"
        raise FieldError(
            "output_dir",
            f"{{output_dir}} {output_dir}: in use by another run ({who}); wait for it to finish or use another "
            "{output_dir}",
        )


@contextlib.contextmanager
def claimed_output_dir(
    output_dir: str, placement: Placement, resolved_config: Optional[dict] = None
) -> Iterator[None]:
    """Create and lock `output_dir` on rank 0 (and save the resolved config) for the duration of the block."""
    lock = OutputDirLock(output_dir)
    failure: Optional[ToolkitError] = None
    if placement.is_main:
        try:
            _claim(output_dir, lock)
            if resolved_config is not None:
                text = json.dumps(resolved_config, indent=2, default=str)
                (Path(output_dir) / RESOLVED_CONFIG_FILE).write_text(text, encoding="utf-8")
                logger.info(f"resolved config:\n{text}")
        except ToolkitError as error:
            failure = error
        except OSError as error:
            failure = FieldError(
                "output_dir", f"{{output_dir}} {output_dir}: not writable ({error.strerror or error})"
            )
    # Every rank learns whether rank 0 got the directory, so none is left waiting in a collective.
    if all_ranks_max(int(failure is not None), placement.world_size):
        lock.release()
        raise failure or FieldError(
            "output_dir", f"{{output_dir}} {output_dir}: rank 0 could not claim it (see its log)"
        )
    barrier(placement.world_size)
    try:
        yield
    finally:
        lock.release()
