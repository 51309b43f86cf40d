"""When to log, evaluate, snapshot and checkpoint, as pure functions of the global step (after the step ran)."""

from __future__ import annotations


def should_log(step: int, schedule) -> bool:
    """Console line + VisualDL scalars every `logging_freq` steps."""
    return step % schedule.logging_freq == 0


def should_eval(step: int, schedule) -> bool:
    """Validation every `eval_freq` steps (0 disables)."""
    return schedule.eval_freq > 0 and step % schedule.eval_freq == 0


def should_save(step: int, schedule) -> bool:
    """Permanent `model_<step>` every `save_steps` steps (0 disables) and at the last step."""
    return (schedule.save_steps > 0 and step % schedule.save_steps == 0) or step == schedule.max_steps


def should_checkpoint(step: int, schedule) -> bool:
    """Rolling `model_last` every `checkpoint_steps` steps (0 disables)."""
    return schedule.checkpoint_steps > 0 and step % schedule.checkpoint_steps == 0
