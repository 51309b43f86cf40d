"""Typed, frozen pretraining configuration shared by the three entry points.

`args.py` (argparse) and the Trainer script (PdArgumentParser) both end here. Every derived number (accumulation
steps, warmup steps, samples per split) is computed once in this module; nothing after parsing mutates config or
reads an `argparse.Namespace`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from ernie1.common.errors import ToolkitError

LR_DECAY_STYLES = ("linear", "cosine", "none")
FP16_OPT_LEVELS = ("O1", "O2")
DEVICES = ("cpu", "gpu", "xpu", "mlu", "npu")


@dataclass(frozen=True)
class ModelSpec:
    """What model to build and from where."""

    # `ernie-1.0` / `ernie-1.0-base-zh` build the ERNIE 1.0 config locally (random init, no download); a directory
    # holding `model_config.json` (or `config.json`) continues from that checkpoint.
    model_name_or_path: str = "ernie-1.0"
    # Tokenizer directory or vocab file; None falls back to model_name_or_path.
    tokenizer_name_or_path: Optional[str] = None
    # `--model_config`: a JSON file or inline `hidden_size=64,num_hidden_layers=2` overrides of the model config.
    model_config: Optional[str] = None
    # Only `ernie` exists; kept because the original's command lines pass it.
    model_type: str = "ernie"
    # Sentence-order-prediction head (and loss) on/off.
    binary_head: bool = True
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    # Recompute encoder-layer activations in backward to save memory.
    use_recompute: bool = False
    # Warm start from trained weights; a checkpoint dir always loads them, a built-in name cannot (no download).
    continue_training: bool = False

    @property
    def tokenizer_source(self) -> str:
        """Where the tokenizer comes from (`--tokenizer_name_or_path`, else `--model_name_or_path`)."""
        return self.tokenizer_name_or_path or self.model_name_or_path


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + learning-rate schedule."""

    max_lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_rate: float = 0.01
    # Derived: int(warmup_rate * max_steps).
    warmup_steps: int = 0
    # After decay_steps the lr stays at min_lr; defaults to max_steps.
    decay_steps: int = 0
    # linear (the original's actual behaviour), cosine, or none (constant max_lr after warmup).
    lr_decay_style: str = "linear"
    weight_decay: float = 0.0
    # Global-norm clipping threshold; 0 disables clipping.
    grad_clip: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8


@dataclass(frozen=True)
class ScheduleConfig:
    """Batch sizes and the step cadence (all counted in global steps unless noted)."""

    global_batch_size: int = 8
    # Per data rank, per forward/backward.
    micro_batch_size: int = 8
    # Derived: global_batch_size // (micro_batch_size * data_world_size).
    accumulate_steps: int = 1
    # Number of data-parallel ranks that read different samples.
    data_world_size: int = 1
    max_steps: int = 500000
    logging_freq: int = 1
    eval_freq: int = 500
    # Global eval batches per evaluation (`--eval_iters`); eval_micro_batches is the derived micro-batch count.
    eval_iters: int = 10
    save_steps: int = 500
    checkpoint_steps: int = 500

    @property
    def eval_micro_batches(self) -> int:
        """Micro-batches per evaluation on each rank (the original multiplies eval_iters by accumulate_steps)."""
        return self.eval_iters * self.accumulate_steps

    @property
    def test_micro_batches(self) -> int:
        """Micro-batches of the final test on each rank (test_iters = eval_iters * 10, then x accumulate_steps)."""
        return self.eval_iters * 10 * self.accumulate_steps

    @property
    def num_evaluations(self) -> int:
        """How many evaluations a full run performs (at every multiple of eval_freq up to max_steps)."""
        return self.max_steps // self.eval_freq if self.eval_freq > 0 else 0

    def requested_samples(self) -> Tuple[int, int, int]:
        """Samples the (train, valid, test) splits must provide (REFERENCE §5, without the spare evaluation; 0 = unused)."""
        per_eval = self.micro_batch_size * self.eval_micro_batches * self.data_world_size
        train = self.global_batch_size * self.max_steps
        valid = per_eval * self.num_evaluations
        test = self.micro_batch_size * self.test_micro_batches * self.data_world_size
        return train, valid, test

    def train_offset(self, global_step: int) -> int:
        """Consumed train samples after `global_step` steps (where a resumed run starts reading)."""
        return self.global_batch_size * global_step

    def valid_offset(self, global_step: int) -> int:
        """Consumed valid samples after `global_step` steps; the original's `(step+1)` off-by-one dropped (§18.3)."""
        evaluations_done = global_step // self.eval_freq if self.eval_freq > 0 else 0
        return self.micro_batch_size * self.eval_micro_batches * self.data_world_size * evaluations_done


@dataclass(frozen=True)
class RuntimeSpec:
    """Where and how the run executes."""

    device: str = "gpu"
    seed: int = 1234
    num_workers: int = 2
    # Mixed precision (GPU only: on CPU Paddle stays fp32 and we say so).
    use_amp: bool = False
    fp16_opt_level: str = "O2"
    # Initial loss scale of the dynamic GradScaler.
    scale_loss: float = 32768.0
    output_dir: str = "output"
    # Processes launched (PADDLE_TRAINERS_NUM under paddle.distributed.launch).
    world_size: int = 1
    dp_degree: int = 1
    sharding_degree: int = 1
    mp_degree: int = 1
    pp_degree: int = 1
    # Static-graph only flags, parsed everywhere so the same command lines work.
    use_sharding: bool = False
    enable_addto: bool = True
    # Forces both dropouts to 0 (already applied to ModelSpec by the parser).
    check_accuracy: bool = False


def _default_data_config() -> Any:
    return None


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run needs, validated and derived once."""

    model: ModelSpec
    optim: OptimConfig
    schedule: ScheduleConfig
    runtime: RuntimeSpec
    # ernie1.data.dataset_config.ErnieDatasetConfig (input_dir, split, max_seq_length, masking, seed, ...).
    data: Any = field(default_factory=_default_data_config)

    def to_dict(self) -> dict:
        """Plain nested dict (for printing, VisualDL text records and saving next to checkpoints)."""
        result = {}
        for part in ("model", "optim", "schedule", "runtime", "data"):
            value = getattr(self, part)
            result[part] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return result


def derive_accumulate_steps(
    global_batch_size: Optional[int], micro_batch_size: int, data_world_size: int
) -> Tuple[int, int]:
    """(global_batch_size, accumulate_steps): None means world x micro; the global batch must split evenly."""
    if micro_batch_size <= 0:
        raise ToolkitError(f"--micro_batch_size must be positive, got {micro_batch_size}")
    per_step = micro_batch_size * data_world_size
    if global_batch_size is None:
        return per_step, 1
    if global_batch_size <= 0 or global_batch_size % per_step != 0:
        raise ToolkitError(
            f"--global_batch_size {global_batch_size} must be a positive multiple of --micro_batch_size x data "
            f"parallel ranks = {micro_batch_size} x {data_world_size} = {per_step}"
        )
    return global_batch_size, global_batch_size // per_step


def derive_warmup_steps(warmup_rate: float, max_steps: int) -> int:
    """warmup_steps = int(warmup_rate * max_steps), with 0 <= warmup_rate <= 1."""
    if not 0.0 <= warmup_rate <= 1.0:
        raise ToolkitError(f"--warmup_rate must be within [0, 1], got {warmup_rate}")
    return int(warmup_rate * max_steps)
