"""Which checkpoint a run continues from: `model_last`, its backup, then `model_<step>` newest first (REFERENCE §12).

A candidate must be complete, written by the same kind of engine, compatible with the flags (else the run is
refused: it belongs to another configuration) and readable (else the next one is tried and the skip is reported).
When `output_dir` holds checkpoints but none is usable the run is refused instead of starting over on top of them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ernie1.common.errors import FieldError
from ernie1.pretrain.checkpoint import (
    CheckpointUnreadable,
    check_resume_compatible,
    is_complete,
    read_meta,
    resume_candidates,
)
from ernie1.pretrain.data import data_prefixes
from ernie1.pretrain.model import architecture_fingerprint
from ernie1.pretrain.runtime import Placement, all_ranks_max

logger = logging.getLogger("ernie1")


def checkpoint_meta(config, state, ernie_config) -> Dict[str, Any]:
    """config.yml: the original's keys plus what a resume must agree on."""
    return {
        "model_name": config.model.model_name_or_path,
        "global_step": state.global_step,
        "global_batch_size": config.schedule.global_batch_size,
        "consumed_samples": state.consumed_samples,
        "micro_batch_size": config.schedule.micro_batch_size,
        "data_world_size": config.schedule.data_world_size,
        "model_config": architecture_fingerprint(ernie_config),
        "data_prefixes": [[weight, name] for weight, name in data_prefixes(config.data.input_dir)],
    }


def first_usable(
    candidates: Sequence[Path], is_complete: Callable[[Path], bool], try_load: Callable[[Path], None]
) -> Tuple[Optional[Path], List[str]]:
    """(the first complete candidate `try_load` accepts, or None; why each earlier one was skipped).

    `try_load` raises CheckpointUnreadable for a candidate to skip; any other error refuses the resume.
    """
    skipped: List[str] = []
    for path in candidates:
        if not is_complete(path):
            skipped.append(f"{path.name} is incomplete")
            continue
        try:
            try_load(path)
        except CheckpointUnreadable as error:
            skipped.append(str(error))
            continue
        if skipped:
            logger.warning(f"resuming from {path.name}: skipped {'; '.join(skipped)}")
        return path, skipped
    return None, skipped


def choose_checkpoint(
    output_dir: str,
    expected_meta: Dict[str, Any],
    weights_file: str,
    foreign_message: str,
    try_load: Callable[[Path], None],
) -> Optional[Path]:
    """The first usable candidate after `try_load(path)` succeeded on it (it raises CheckpointUnreadable otherwise).

    `weights_file` marks a checkpoint of this engine; a complete one without it is refused with `foreign_message`.
    """

    def check_and_load(path: Path) -> None:
        meta = read_meta(path)
        if not (path / weights_file).is_file():
            raise FieldError("output_dir", f"{path}: {foreign_message}")
        check_resume_compatible(meta, expected_meta, str(path))
        try_load(path)

    candidates = resume_candidates(output_dir)
    chosen, skipped = first_usable(candidates, is_complete, check_and_load)
    if chosen is None and candidates:
        raise FieldError(
            "output_dir",
            f"{{output_dir}} {output_dir}: holds checkpoints but none is usable ({'; '.join(skipped)}); repair or "
            "remove them, or use a new {output_dir}",
        )
    return chosen


def check_same_checkpoint_everywhere(step: int, placement: Placement) -> None:
    """Every rank must resume from the same step: on several nodes output_dir has to be a shared filesystem."""
    highest, lowest = all_ranks_max(step, placement.world_size), -all_ranks_max(-step, placement.world_size)
    if highest != lowest:
        raise FieldError(
            "output_dir",
            f"{{output_dir}}: the ranks found different checkpoints (global steps {lowest} to {highest}, -1 = none); "
            "on several nodes put output_dir on a filesystem they all share",
        )
