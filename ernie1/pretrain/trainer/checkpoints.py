"""Which Trainer checkpoint (`output_dir/checkpoint-<step>`) a run resumes from, checked before the Trainer loads it.

The Trainer writes trainer_state.json, then the RNG states, last: a folder without both was cut short. A complete
one whose files do not load (truncated, corrupt) is skipped for the previous one; `--resume_from_checkpoint` names
one folder, so a bad one there is an error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional, Tuple

from paddlenlp.trainer.trainer_utils import PREFIX_CHECKPOINT_DIR

from ernie1.common.errors import FieldError
from ernie1.common.formats import TRAINER_ARGS_FILE, TRAINER_RNG_STATE_GLOB, TRAINER_STATE_FILE
from ernie1.pretrain.checkpoint import CheckpointUnreadable, check_resume_compatible, load_file
from ernie1.pretrain.resume import first_usable
from ernie1.pretrain.trainer.arguments import global_batch_size

logger = logging.getLogger("ernie1")

# Files of a Trainer checkpoint that paddle.load reads (weights, optimizer, scheduler, scaler, RNG, arguments).
_PADDLE_FILE_SUFFIXES = (".pdparams", ".pdopt", ".pth", ".bin")


def is_complete_trainer_checkpoint(directory: Path) -> bool:
    """trainer_state.json and the RNG states (written last) are there."""
    return (directory / TRAINER_STATE_FILE).is_file() and any(directory.glob(TRAINER_RNG_STATE_GLOB))


def check_readable(directory: Path) -> None:
    """Read every file the Trainer will load; CheckpointUnreadable names the first that fails."""
    try:
        json.loads((directory / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointUnreadable(f"{directory / TRAINER_STATE_FILE}: unreadable ({type(error).__name__})") from None
    for path in sorted(directory.iterdir()):
        if path.suffix in _PADDLE_FILE_SUFFIXES:
            load_file(path, return_numpy=True)


def _trainer_checkpoints(output: Path) -> List[Tuple[int, Path]]:
    found = []
    for directory in output.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = directory.name.rsplit("-", 1)[-1]
        if step.isdigit() and directory.is_dir():
            found.append((int(step), directory))
    return sorted(found, reverse=True)


def find_resume_checkpoint(training_args) -> Optional[str]:
    """`--resume_from_checkpoint`, else the newest usable `checkpoint-<step>` (unless --overwrite_output_dir)."""
    if training_args.resume_from_checkpoint:
        path = Path(training_args.resume_from_checkpoint)
        if not (path / TRAINER_STATE_FILE).is_file():
            raise FieldError(
                "resume_from_checkpoint",
                f"{{resume_from_checkpoint}} {path}: not a Trainer checkpoint (no {TRAINER_STATE_FILE} there)",
            )
        try:
            check_readable(path)
        except CheckpointUnreadable as error:
            raise FieldError("resume_from_checkpoint", f"{{resume_from_checkpoint}} {path}: {error}") from None
        return str(path)
    output = Path(training_args.output_dir)
    if not training_args.do_train or training_args.overwrite_output_dir or not output.is_dir():
        return None
    candidates = [directory for _step, directory in _trainer_checkpoints(output)]
    chosen, skipped = first_usable(candidates, is_complete_trainer_checkpoint, check_readable)
    if chosen is not None:
        return str(chosen)
    if candidates:
        raise FieldError(
            "output_dir",
            f"{{output_dir}} {output}: holds Trainer checkpoints but none is usable ({'; '.join(skipped)}); repair or "
            "remove them, pass {overwrite_output_dir}, or use a new {output_dir}",
            "overwrite_output_dir",
        )
    return None


def check_checkpoint_compatible(checkpoint: str, training_args) -> None:
    """Refuse a resume whose global batch differs: the Trainer would silently seek to step x the new batch size."""
    path = Path(checkpoint) / TRAINER_ARGS_FILE
    if not path.is_file():
        return
    saved = load_file(path)
    if not hasattr(saved, "per_device_train_batch_size"):
        return
    check_resume_compatible(
        {"global_batch_size": global_batch_size(saved)},
        {"global_batch_size": global_batch_size(training_args)},
        checkpoint,
    )
