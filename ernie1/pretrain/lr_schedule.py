"""Learning-rate schedule: linear warmup, then linear / cosine / no decay down to min_lr (REFERENCE §10)."""

from __future__ import annotations

import math

from paddle.optimizer.lr import LRScheduler

from ernie1.common.errors import FieldError
from ernie1.pretrain.flags import LR_DECAY_STYLES


def learning_rate_at(
    step: int, max_lr: float, min_lr: float, warmup_steps: int, decay_steps: int, style: str
) -> float:
    """The learning rate of scheduler step `step` (0 = the first update, which therefore uses lr 0 under warmup)."""
    if style not in LR_DECAY_STYLES:
        raise FieldError(
            "lr_decay_style", f"{{lr_decay_style}} must be one of {', '.join(LR_DECAY_STYLES)}, got {style!r}"
        )
    if warmup_steps > 0 and step <= warmup_steps:
        return max_lr * step / warmup_steps
    if style == "none":
        return max_lr
    if step > decay_steps or decay_steps <= warmup_steps:
        return min_lr
    ratio = (step - warmup_steps) / (decay_steps - warmup_steps)
    if style == "linear":
        return min_lr + (1.0 - ratio) * (max_lr - min_lr)
    return min_lr + 0.5 * (math.cos(math.pi * ratio) + 1.0) * (max_lr - min_lr)


class WarmupDecaySchedule(LRScheduler):
    """Paddle scheduler over `learning_rate_at`; `state_dict()` holds last_epoch, so a resume continues exactly."""

    def __init__(
        self,
        max_lr: float,
        min_lr: float,
        warmup_steps: int,
        decay_steps: int,
        style: str = "linear",
        last_epoch: int = -1,
    ):
        self.max_lr = max_lr
        self.min_lr = min_lr
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.style = style
        learning_rate_at(0, max_lr, min_lr, warmup_steps, decay_steps, style)  # validates style early
        super().__init__(learning_rate=max_lr, last_epoch=last_epoch)

    def get_lr(self) -> float:
        """Paddle hook: the lr for the current `last_epoch`."""
        return learning_rate_at(
            self.last_epoch, self.max_lr, self.min_lr, self.warmup_steps, self.decay_steps, self.style
        )


def build_lr_scheduler(optim, last_step: int = 0) -> WarmupDecaySchedule:
    """Scheduler for an `OptimConfig`, positioned at global step `last_step` (0 for a fresh run)."""
    return WarmupDecaySchedule(
        optim.max_lr,
        optim.min_lr,
        optim.warmup_steps,
        optim.decay_steps,
        optim.lr_decay_style,
        last_epoch=last_step - 1,
    )
