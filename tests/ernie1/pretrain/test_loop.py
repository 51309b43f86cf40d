"""The one pretraining loop: speed figures without eval/save time and right after a resume, barriers around saving,
and both argparse entry points running it with their engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import run_pretrain
import run_pretrain_static
from ernie1.pretrain import loop
from ernie1.pretrain.config import build_config
from ernie1.pretrain.data import PretrainingData
from ernie1.pretrain.engines.dygraph import DygraphEngine
from ernie1.pretrain.engines.static import StaticEngine
from ernie1.pretrain.runtime import Placement
from tests.ernie1.pretrain.helpers import tiny_argv


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeEngine:
    """One second per step, a minute per evaluation batch, two per save."""

    tokenizer = None
    ernie_config = SimpleNamespace(vocab_size=8)
    run_info = {"attention_impl": "sdpa", "precision": "fp32"}

    def __init__(self, clock: FakeClock, events: list):
        self.clock, self.events = clock, events

    def learning_rate(self):
        return 0.5

    def step(self, micro_batches):
        self.clock.now += 1.0
        return np.array([1.0, 0.75, 0.25]) * len(micro_batches)

    def evaluate_step(self, batch):
        self.clock.now += 60.0
        return {"loss": 1.0, "lm_loss": 0.75, "sop_loss": 0.25}

    def set_training(self, training):
        pass

    def mean_across_ranks(self, values):
        return list(values)

    def amp_state(self):
        return None

    def save(self, directory, meta, state, keep_existing):
        self.clock.now += 120.0
        self.events.append(f"save {Path(directory).name}")


class RecordingMetrics:
    lines: list = []
    starts: list = []

    def __init__(self, *args, **kwargs):
        pass

    def add_text(self, *args):
        pass

    def log_train(self, step, losses, lr, steps_per_second, samples_per_second, tokens_per_second, amp=None):
        RecordingMetrics.lines.append((step, steps_per_second, losses["loss"]))

    def log_eval(self, *args):
        pass

    def log_start(self, step, run_info, baseline):
        RecordingMetrics.starts.append((step, run_info, baseline))

    def close(self):
        pass


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    clock, events = FakeClock(), []
    RecordingMetrics.lines = []
    RecordingMetrics.starts = []
    monkeypatch.setattr(loop, "clock", clock)
    monkeypatch.setattr(loop, "open_metrics", lambda config, placement, ernie_config: RecordingMetrics())
    monkeypatch.setattr(loop, "checkpoint_meta", lambda config, state, ernie_config: {})
    monkeypatch.setattr(loop, "barrier", lambda world_size: events.append(f"barrier x{world_size}"))
    values = dict(
        input_dir="unused",
        output_dir=str(tmp_path),
        micro_batch_size=1,
        max_steps=6,
        logging_freq=3,
        eval_freq=2,
        eval_iters=1,
        save_steps=2,
        checkpoint_steps=0,
        num_workers=0,
    )
    config = build_config(values, world_size=2, data_world_size=1)
    # Masked labels 0, 1, 2, 0, 1, 2, ...: the unigram baseline predicts 0 (the first of the tied counts).
    samples = [{"x": np.array([index]), "masked_labels": np.array([index % 3])} for index in range(64)]
    data = PretrainingData(samples, samples, samples, lambda batch: {"x": np.stack([s["x"] for s in batch])})
    placement = Placement("cpu", world_size=2, rank=0, local_rank=0, data_rank=0, data_world_size=1)
    return config, placement, FakeEngine(clock, events), data, events


def test_speed_leaves_out_evaluation_and_saving(fake_run):
    config, placement, engine, data, _ = fake_run
    result = loop.train(config, placement, engine, data, loop.TrainingState())
    # Three steps of one second between the lines; the minute-long evaluations and saves in between do not count.
    assert RecordingMetrics.lines == [(3, 1.0, 1.0), (6, 1.0, 1.0)]
    assert result.global_step == 6 and len(result.valid_losses) == 3


def test_the_run_starts_with_how_steps_run_and_the_unigram_baseline(fake_run):
    config, placement, engine, data, _ = fake_run
    loop.train(config, placement, engine, data, loop.TrainingState())
    [(step, run_info, baseline)] = RecordingMetrics.starts
    assert (step, run_info) == (0, {"attention_impl": "sdpa", "precision": "fp32"})
    # 64 train labels (22 zeros, 21 ones, 21 twos) and the same 64 as valid labels (its first 500 samples).
    assert baseline.masked_accuracy == pytest.approx(22 / 64)
    assert (baseline.train_labels, baseline.valid_labels, baseline.top_token_id) == (64, 64, 0)


def test_speed_after_a_resume_counts_the_steps_really_run(fake_run):
    config, placement, engine, data, _ = fake_run
    # Resumed at step 4 with the loss sums of step 4 pending: the line at step 6 covers steps 5-6 only (2 s).
    state = loop.TrainingState(global_step=4, consumed_samples=4, pending_losses=[1.0, 0.75, 0.25])
    state.pending_micro_batches = 1
    loop.train(config, placement, engine, data, state)
    assert RecordingMetrics.lines == [(6, 1.0, 1.0)]


def test_every_save_is_framed_by_barriers_on_all_ranks(fake_run):
    config, placement, engine, data, events = fake_run
    loop.train(config, placement, engine, data, loop.TrainingState())
    saves = [event for event in events if event.startswith("save")]
    assert saves == ["save model_2", "save model_4", "save model_6"]
    for save in saves:
        index = events.index(save)
        assert events[index - 1] == events[index + 1] == "barrier x2"


@pytest.mark.parametrize("entry,engine_class", [(run_pretrain, DygraphEngine), (run_pretrain_static, StaticEngine)])
def test_both_argparse_entry_points_run_the_one_loop(
    entry, engine_class, monkeypatch, tmp_path, tiny_prefix, vocab_path
):
    calls = []

    def recording_train(config, placement, engine, data, state, resumed_from=None):
        calls.append((type(engine), state.global_step, resumed_from))
        return loop.TrainResult(0, [], [], None, resumed_from)

    monkeypatch.setattr(loop, "train", recording_train)
    assert entry.main(tiny_argv(tiny_prefix, str(tmp_path / "out"), str(vocab_path), max_steps=2)) == 0
    assert calls == [(engine_class, 0, None)]
