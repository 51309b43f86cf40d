"""LR schedule: REFERENCE §10's table, the three decay styles, and the paddle scheduler resuming exactly."""

from __future__ import annotations

import math

import pytest

from ernie1.common.errors import FieldError
from ernie1.pretrain.config import OptimConfig
from ernie1.pretrain.lr_schedule import WarmupDecaySchedule, build_lr_scheduler, learning_rate_at

TABLE = [(0, 0.0), (5000, 5e-5), (10000, 1e-4), (500000, 5.5e-5), (990000, 1e-5), (990001, 1e-5), (2000000, 1e-5)]


@pytest.mark.parametrize("step,expected", TABLE)
def test_reference_table_linear(step, expected):
    assert learning_rate_at(step, 1e-4, 1e-5, 10000, 990000, "linear") == pytest.approx(expected, rel=1e-12, abs=1e-20)


def test_cosine_midpoint_and_ends():
    args = (1e-4, 1e-5, 100, 1100)
    assert learning_rate_at(100, *args, "cosine") == pytest.approx(1e-4)
    assert learning_rate_at(600, *args, "cosine") == pytest.approx(1e-5 + 0.5 * 9e-5)
    assert learning_rate_at(350, *args, "cosine") == pytest.approx(1e-5 + 0.5 * (math.cos(math.pi * 0.25) + 1) * 9e-5)
    assert learning_rate_at(1100, *args, "cosine") == pytest.approx(1e-5)
    assert learning_rate_at(5000, *args, "cosine") == 1e-5


def test_none_keeps_max_after_warmup():
    assert learning_rate_at(5, 1e-3, 1e-5, 10, 20, "none") == pytest.approx(5e-4)
    assert [learning_rate_at(t, 1e-3, 1e-5, 10, 20, "none") for t in (10, 20, 500)] == [1e-3, 1e-3, 1e-3]


def test_no_warmup_starts_at_max():
    assert learning_rate_at(0, 1e-3, 1e-4, 0, 10, "linear") == pytest.approx(1e-3)


def test_unknown_style():
    with pytest.raises(FieldError, match="lr_decay_style must be one of linear, cosine, none, got 'step'") as error:
        learning_rate_at(0, 1, 0, 0, 1, "step")
    assert error.value.field == "lr_decay_style"


def test_scheduler_first_update_uses_lr_zero_and_resumes():
    optim = OptimConfig(max_lr=1e-3, min_lr=1e-4, warmup_steps=4, decay_steps=20, lr_decay_style="linear")
    fresh = build_lr_scheduler(optim)
    seen = []
    for _ in range(10):
        seen.append(fresh())
        fresh.step()
    assert seen[0] == 0.0
    assert seen == pytest.approx([learning_rate_at(t, 1e-3, 1e-4, 4, 20, "linear") for t in range(10)])
    resumed = build_lr_scheduler(optim, last_step=6)
    assert resumed() == pytest.approx(seen[6])
    reloaded = WarmupDecaySchedule(1e-3, 1e-4, 4, 20)
    reloaded.set_state_dict(fresh.state_dict())
    assert reloaded() == pytest.approx(learning_rate_at(10, 1e-3, 1e-4, 4, 20, "linear"))
