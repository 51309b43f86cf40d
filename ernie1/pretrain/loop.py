"""The pretraining loop, once, over a small step-engine interface (the dygraph and static engines implement it).

Read top-down as nanoGPT's train.py: streams positioned at the run state, then per global step: take micro-batches,
`engine.step`, advance the state, and by the cadence log / evaluate / snapshot / checkpoint; finally the test split.
Speed figures count the steps this process really ran since the last line (fewer than logging_freq after a resume)
over training time only: evaluation and saving are not training time. Saving is framed by barriers on every rank.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence

import numpy as np

from ernie1.common.errors import FieldError
from ernie1.common.formats import LAST_CHECKPOINT, SNAPSHOT_PREFIX
from ernie1.pretrain import cadence
from ernie1.pretrain.checkpoint import RngState
from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.data import EvalStream, PretrainingData, make_loader
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.pretrain.model import model_config_dict
from ernie1.pretrain.quality import QUALITY_SUM_NAMES, dataset_unigram_baseline, summarize
from ernie1.pretrain.resume import checkpoint_meta
from ernie1.pretrain.runtime import Placement, barrier

logger = logging.getLogger("ernie1")

# The clock of the speed figures (tests replace it).
clock = time.perf_counter


@dataclass
class TrainingState:
    """Position of the run: resumable via state_dict(), saved with every checkpoint."""

    global_step: int = 0
    consumed_samples: int = 0
    # Loss sums since the last log line, so a checkpoint between log steps resumes the same averages.
    pending_losses: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    pending_micro_batches: int = 0
    # RNG states read from a checkpoint, applied right before the loop (data building must not disturb them).
    pending_rng: Optional[Dict[str, Any]] = None

    def state_dict(self) -> Dict[str, Any]:
        """Plain-python state."""
        return {
            "global_step": self.global_step,
            "consumed_samples": self.consumed_samples,
            "pending_losses": list(self.pending_losses),
            "pending_micro_batches": self.pending_micro_batches,
        }

    def set_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a state saved by state_dict()."""
        self.global_step = int(state["global_step"])
        self.consumed_samples = int(state["consumed_samples"])
        self.pending_losses = [float(value) for value in state.get("pending_losses", [0.0, 0.0, 0.0])]
        self.pending_micro_batches = int(state.get("pending_micro_batches", 0))


@dataclass
class TrainResult:
    """What a run did (tests assert on it; rank 0 also has it in metrics.jsonl)."""

    global_step: int
    train_losses: List[float]
    valid_losses: List[Dict[str, float]]
    test_losses: Optional[Dict[str, float]]
    resumed_from: Optional[str]


class StepEngine(Protocol):
    """How one step runs: the only part in which dygraph and static graph differ.

    Built by `run.run_pretraining` as `Engine(config, placement, tokenizer, ernie_config)`, which then reads the
    resume checkpoint with `read_checkpoint` (CheckpointUnreadable: try an older one), calls `start` and finally
    `close`; `loop.train` uses the rest.
    """

    tokenizer: Any
    ernie_config: Any
    # The file that marks this engine's checkpoints, and the refusal for a complete checkpoint of the other engine.
    weights_file: str
    foreign_message: str
    # How steps run ({"attention_impl": ..., "precision": ...}), for the start-of-run line and record.
    run_info: Dict[str, str]
    # Whether the model starts from a checkpoint directory's weights (then its MLM bias is kept, mlm_prior).
    warm_start: bool

    def read_checkpoint(self, directory: Path) -> Any:
        """Every file of a checkpoint read into memory, nothing applied yet."""

    def start(self, state: TrainingState, checkpoint: Any) -> None:
        """Apply a checkpoint read by read_checkpoint (None: a fresh run) and get ready to step."""

    def set_mlm_bias(self, prior: Any) -> None:
        """After `start`, before the first step: the MLM decoder bias of a fresh model (ernie1.pretrain.mlm_prior)."""

    def close(self) -> None:
        """Release what the engine holds (the static engine leaves static mode)."""

    def learning_rate(self) -> float:
        """The learning rate the next step uses."""

    def step(self, micro_batches: Sequence[Dict[str, Any]]) -> Any:
        """One global step; this rank's [loss, lm_loss, sop_loss] summed over the micro-batches (device or host)."""

    def evaluate_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        """loss, lm_loss, sop_loss and the quality sums (QUALITY_SUM_NAMES) of one micro-batch, without dropout or
        update."""

    def set_training(self, training: bool) -> None:
        """Dropout on (training) or off (evaluation)."""

    def mean_across_ranks(self, values: List[float]) -> List[float]:
        """Loss means over the ranks (identity where the step already reduced them)."""

    def amp_state(self) -> Optional[Dict[str, float]]:
        """Loss-scaler figures for the log line, or None."""

    def save(self, directory: str, meta: Dict[str, Any], state: TrainingState, keep_existing: bool) -> None:
        """Write a complete checkpoint of every part into `directory` (rank 0 only)."""


def _host(values: Any) -> List[float]:
    return [float(value) for value in np.asarray(values.numpy() if hasattr(values, "numpy") else values).reshape(-1)]


def take_micro_batches(iterator: Iterator, count: int, config) -> List[Dict[str, Any]]:
    """The next `count` micro-batches of one global step; running out before max_steps is a data problem."""
    batches = []
    for _ in range(count):
        try:
            batches.append(next(iterator))
        except StopIteration:
            raise FieldError(
                "input_dir",
                f"{{input_dir}} {config.data.input_dir}: the train split ran out of samples before {{max_steps}}",
                "max_steps",
            ) from None
    return batches


def evaluate(engine: StepEngine, config, placement: Placement, stream: EvalStream, micro_batches: int):
    """Mean losses and the quality figures over the next `micro_batches` of `stream`, across ranks, with samples/s;
    None if it is empty."""
    if stream.loader is None:
        return None
    engine.set_training(False)
    totals: Dict[str, float] = {}
    count, start = 0, clock()
    for batch in stream.take(micro_batches):
        for name, value in engine.evaluate_step(batch).items():
            totals[name] = totals.get(name, 0.0) + float(value)
        count += 1
    engine.set_training(True)
    if count == 0:
        return None
    names = list(totals)
    # Means over batches and ranks: losses are per-batch means, the quality sums keep their ratios.
    means = dict(zip(names, engine.mean_across_ranks([totals[name] / count for name in names])))
    result = {name: means[name] for name in LOSS_NAMES}
    if all(name in means for name in QUALITY_SUM_NAMES):
        result.update(summarize(means, result["lm_loss"]))
    elapsed = max(clock() - start, 1e-9)
    result["samples_per_second"] = count * config.schedule.eval_micro_batch_size * placement.world_size / elapsed
    return result


class _Speed:
    """Training time and steps since the last log line, with evaluation and saving taken out."""

    def __init__(self) -> None:
        self.start, self.steps = clock(), 0

    def pause(self) -> float:
        return clock()

    def resume(self, paused_at: float) -> None:
        self.start += clock() - paused_at

    def lap(self) -> float:
        """Steps per second since the last lap (steps really run in this process), then restart."""
        steps_per_second = self.steps / max(clock() - self.start, 1e-9)
        self.start, self.steps = clock(), 0
        return steps_per_second


def _log_train(config, engine, state, metrics, speed: _Speed, lr: float) -> float:
    schedule = config.schedule
    count = max(state.pending_micro_batches, 1)
    means = engine.mean_across_ranks([value / count for value in state.pending_losses])
    steps_per_second = speed.lap()
    samples_per_second = steps_per_second * schedule.global_batch_size
    metrics.log_train(
        state.global_step,
        dict(zip(LOSS_NAMES, means)),
        lr,
        steps_per_second,
        samples_per_second,
        samples_per_second * config.data.max_seq_length,
        engine.amp_state(),
    )
    state.pending_losses = [0.0, 0.0, 0.0]
    state.pending_micro_batches = 0
    return means[0]


def save(config, placement: Placement, engine: StepEngine, state: TrainingState, name: str) -> None:
    """Every rank reaches the barrier, rank 0 writes `output_dir/<name>` atomically, every rank waits for it."""
    barrier(placement.world_size)
    if placement.is_main:
        engine.save(
            str(Path(config.runtime.output_dir) / name),
            checkpoint_meta(config, state, engine.ernie_config),
            state,
            keep_existing=name != LAST_CHECKPOINT,
        )
    barrier(placement.world_size)


def open_metrics(config, placement: Placement, ernie_config) -> MetricsLogger:
    """Rank 0's metrics sink, with the resolved and the model config as text records."""
    metrics = MetricsLogger(config.runtime.output_dir, placement.is_main)
    metrics.add_text("args", json.dumps(config.to_dict(), indent=2, default=str))
    metrics.add_text("model_config", json.dumps(model_config_dict(ernie_config), indent=2))
    return metrics


def log_start(config, placement: Placement, engine: StepEngine, data: PretrainingData, metrics, step: int) -> None:
    """How steps run and the unigram baseline of the valid split (rank 0; the baseline only where evaluation runs)."""
    if not placement.is_main:
        return
    baseline = None
    if config.schedule.eval_freq > 0:
        baseline = dataset_unigram_baseline(data.train, data.valid, int(engine.ernie_config.vocab_size))
    metrics.log_start(step, dict(engine.run_info), baseline)


def train(
    config,
    placement: Placement,
    engine: StepEngine,
    data: PretrainingData,
    state: TrainingState,
    resumed_from: Optional[str] = None,
) -> TrainResult:
    """Run from `state.global_step` to max_steps: log, evaluate, snapshot, checkpoint; then the final test."""
    schedule = config.schedule
    loader_args = (schedule.micro_batch_size, placement.data_rank, placement.data_world_size)
    train_batches = iter(
        make_loader(data.train, data.train_collate, *loader_args, state.consumed_samples, config.runtime.num_workers)
    )
    eval_args = (schedule.eval_micro_batch_size, placement.data_rank, placement.data_world_size)
    valid_stream = EvalStream(
        make_loader(data.valid, data.collate_fn, *eval_args, schedule.valid_offset(state.global_step), wrap=True)
    )
    metrics = open_metrics(config, placement, engine.ernie_config)
    log_start(config, placement, engine, data, metrics, state.global_step)
    train_losses: List[float] = []
    valid_losses: List[Dict[str, float]] = []
    engine.set_training(True)
    if state.pending_rng is not None:
        RngState().set_state_dict(state.pending_rng)
        state.pending_rng = None
    speed, pending = _Speed(), None
    try:
        while state.global_step < schedule.max_steps:
            micro_batches = take_micro_batches(train_batches, schedule.accumulate_steps, config)
            lr = engine.learning_rate()
            sums = engine.step(micro_batches)
            # Kept as returned (on the device for dygraph): a host copy every step would sync the GPU.
            pending = sums if pending is None else pending + sums
            state.global_step += 1
            state.consumed_samples += schedule.global_batch_size
            state.pending_micro_batches += schedule.accumulate_steps
            speed.steps += 1
            step = state.global_step
            saving = cadence.should_save(step, schedule) or cadence.should_checkpoint(step, schedule)
            if saving or cadence.should_log(step, schedule):
                state.pending_losses = [a + b for a, b in zip(state.pending_losses, _host(pending))]
                pending = None
            if cadence.should_log(step, schedule):
                train_losses.append(_log_train(config, engine, state, metrics, speed, lr))
            paused_at = speed.pause()
            if cadence.should_eval(step, schedule):
                result = evaluate(engine, config, placement, valid_stream, schedule.eval_micro_batches)
                if result is not None:
                    valid_losses.append(result)
                    metrics.log_eval("valid", step, result)
            if cadence.should_save(step, schedule):
                save(config, placement, engine, state, f"{SNAPSHOT_PREFIX}{step}")
            if cadence.should_checkpoint(step, schedule):
                save(config, placement, engine, state, LAST_CHECKPOINT)
            speed.resume(paused_at)
        test_stream = EvalStream(make_loader(data.test, data.collate_fn, *eval_args, 0, wrap=True))
        test_losses = evaluate(engine, config, placement, test_stream, schedule.test_micro_batches)
        if test_losses is not None:
            metrics.log_eval("test", state.global_step, test_losses)
    finally:
        metrics.close()
    return TrainResult(state.global_step, train_losses, valid_losses, test_losses, resumed_from)
