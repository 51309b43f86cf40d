"""Cadence: which steps log, evaluate, snapshot and checkpoint."""

from __future__ import annotations

from ernie1.pretrain import cadence
from ernie1.pretrain.config import ScheduleConfig


def test_cadence_steps():
    schedule = ScheduleConfig(max_steps=10, logging_freq=2, eval_freq=4, save_steps=3, checkpoint_steps=5)
    steps = range(1, 11)
    assert [s for s in steps if cadence.should_log(s, schedule)] == [2, 4, 6, 8, 10]
    assert [s for s in steps if cadence.should_eval(s, schedule)] == [4, 8]
    assert [s for s in steps if cadence.should_save(s, schedule)] == [3, 6, 9, 10]
    assert [s for s in steps if cadence.should_checkpoint(s, schedule)] == [5, 10]


def test_zero_disables():
    schedule = ScheduleConfig(max_steps=10, eval_freq=0, save_steps=0, checkpoint_steps=0)
    assert not any(cadence.should_eval(s, schedule) or cadence.should_checkpoint(s, schedule) for s in range(1, 11))
    assert [s for s in range(1, 11) if cadence.should_save(s, schedule)] == [10]
