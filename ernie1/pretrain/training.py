"""What every pretraining entry point shares around its loop: run state, model building, checkpoint metadata,
data building and the output directory (the dygraph, static and Trainer scripts differ only in how a step runs)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import paddle

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.data import (
    EvalStream,
    PretrainingData,
    base_vocab_size,
    build_collate_fn,
    build_datasets,
    data_prefixes,
    make_loader,
)
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.pretrain.model import (
    BUILTIN_CONFIGS,
    PretrainingCriterion,
    architecture_fingerprint,
    build_ernie_config,
    build_pretraining_model,
    enable_recompute,
    load_model_weights,
    model_config_dict,
)
from ernie1.pretrain.runtime import Runtime

logger = logging.getLogger("ernie1")


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


def build_model(config, tokenizer) -> tuple:
    """(model, criterion, ernie_config): a built-in config from scratch, or a checkpoint dir with its weights."""
    ernie_config = build_ernie_config(config.model, base_vocab_size(tokenizer))
    max_positions = int(ernie_config.max_position_embeddings)
    if config.data.max_seq_length > max_positions:
        raise ToolkitError(
            f"--max_seq_len {config.data.max_seq_length} exceeds the model's max_position_embeddings {max_positions}"
        )
    model = build_pretraining_model(ernie_config, config.model.binary_head)
    name = config.model.model_name_or_path
    if name in BUILTIN_CONFIGS:
        if config.model.continue_training:
            raise ToolkitError(
                f"--continue_training needs trained weights: --model_name_or_path {name} is a built-in config "
                "(random init, no download); pass a checkpoint directory instead"
            )
    else:
        # As the original: a checkpoint directory is always a warm start (from_pretrained), flag or not.
        load_model_weights(model, name)
    if config.model.use_recompute:
        enable_recompute(model)
    return model, PretrainingCriterion(config.model.binary_head), ernie_config


def amp_enabled(config, runtime: Runtime) -> bool:
    """AMP only where Paddle implements it; on CPU it would silently stay fp32, so say so."""
    if not config.runtime.use_amp:
        return False
    if runtime.device == "cpu":
        logger.warning("--use_amp true has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32")
        return False
    return True


def checkpoint_meta(config, state: TrainingState, ernie_config) -> Dict[str, Any]:
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


def build_pretraining_data(
    config, runtime: Runtime, tokenizer, state: Optional[TrainingState] = None
) -> PretrainingData:
    """The three splits and the collate function (`state` is unused: loaders, not datasets, know the position)."""
    # No barrier here: data_tools lets one rank build each index map while the others wait for the file with a
    # timeout, so a rank that fails cannot leave the others blocked in a collective forever.
    train, valid, test = build_datasets(config, tokenizer, runtime.data_rank, runtime.local_rank, runtime.rank)
    if train is None or len(train) == 0:
        raise ToolkitError(f"--input_dir {config.data.input_dir}: the train split is empty (check --split)")
    collate = build_collate_fn(config.data.max_seq_length, tokenizer.pad_token_id)
    return PretrainingData(train, valid, test, collate)


def prepare_output_dir(config, runtime: Runtime) -> None:
    """Create output_dir (PaddleNLP #1546) and save the resolved config next to the checkpoints."""
    if runtime.is_main:
        output = Path(config.runtime.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        resolved = json.dumps(config.to_dict(), indent=2, default=str)
        (output / "pretrain_config.json").write_text(resolved, encoding="utf-8")
        logger.info(f"resolved config:\n{resolved}")
    if runtime.world_size > 1:
        paddle.distributed.barrier()


@dataclass
class RunStreams:
    """The loop's inputs and outputs: metrics sink, train batches from the resume point, a persistent valid stream."""

    metrics: MetricsLogger
    train_batches: Iterator
    valid_stream: EvalStream


def open_run_streams(
    config, runtime: Runtime, data: PretrainingData, state: TrainingState, ernie_config
) -> RunStreams:
    """Metrics (with the resolved config) and data streams positioned at `state` (no replay, no double skip)."""
    schedule = config.schedule
    metrics = MetricsLogger(config.runtime.output_dir, runtime.is_main)
    metrics.add_text("args", json.dumps(config.to_dict(), indent=2, default=str))
    metrics.add_text("model_config", json.dumps(model_config_dict(ernie_config), indent=2))
    loader_args = (schedule.micro_batch_size, runtime.data_rank, runtime.data_world_size)
    train_loader = make_loader(
        data.train, data.collate_fn, *loader_args, state.consumed_samples, config.runtime.num_workers
    )
    valid_loader = make_loader(
        data.valid, data.collate_fn, *loader_args, schedule.valid_offset(state.global_step), 0, wrap=True
    )
    return RunStreams(metrics, iter(train_loader), EvalStream(valid_loader))


def final_test_stream(config, runtime: Runtime, data: PretrainingData) -> EvalStream:
    """The test split from its start (the final evaluation)."""
    loader_args = (config.schedule.micro_batch_size, runtime.data_rank, runtime.data_world_size)
    return EvalStream(make_loader(data.test, data.collate_fn, *loader_args, 0, 0, wrap=True))


def take_micro_batches(iterator: Iterator, count: int, config) -> List[Dict[str, Any]]:
    """The next `count` micro-batches of one global step; running out before max_steps is a data problem."""
    batches = []
    for _ in range(count):
        try:
            batches.append(next(iterator))
        except StopIteration:
            raise ToolkitError(
                f"--input_dir {config.data.input_dir}: the train split ran out of samples before --max_steps"
            ) from None
    return batches
