"""Typed, frozen pretraining configuration shared by the three entry points, validated and derived once.

`args.py` (argparse) and the Trainer script (PdArgumentParser) both collect the flags of `ernie1.pretrain.flags` under
their config-field names and call `build_config`. Every derived number (accumulation steps, warmup steps, samples per
split, valid offset) is computed here; nothing after it mutates config or reads a namespace. Validation errors are
`FieldError`s naming fields; the CLI layer renders the flag names its users typed.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from ernie1.common.errors import FieldError
from ernie1.pretrain.flags import FLAGS_BY_NAME, MODEL_TYPES, defaults

logger = logging.getLogger("ernie1")

# The original's three logged losses, in the order every engine returns them.
LOSS_NAMES = ("loss", "lm_loss", "sop_loss")


@dataclass(frozen=True)
class ModelConfig:
    """What model to build and from where."""

    # `ernie-1.0` / `ernie-1.0-base-zh` build the ERNIE 1.0 config locally (random init, no download); a directory
    # holding `model_config.json` (or `config.json`) continues from that checkpoint.
    model_name_or_path: str = "ernie-1.0"
    # Tokenizer directory or vocab file; None falls back to model_name_or_path.
    tokenizer_name_or_path: Optional[str] = None
    # A JSON file, a JSON object or inline `hidden_size=64,num_hidden_layers=2` overrides of the model config.
    model_config: Optional[str] = None
    # Only `ernie` exists; kept because the original's command lines pass it.
    model_type: str = "ernie"
    # Sentence-order-prediction head (and loss) on/off.
    binary_head: bool = True
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    # Recompute encoder-layer activations in backward to save memory.
    use_recompute: bool = False
    # Self-attention implementation: paddle, sdpa, or auto (resolved on the device by ernie1.pretrain.attention).
    attention_impl: str = "auto"
    # Warm start from trained weights; a checkpoint dir always loads them, a built-in name cannot (no download).
    continue_training: bool = False
    # A fresh model's MLM decoder bias: unigram (the train tokens' centred log prior, see mlm_prior) or zeros.
    mlm_bias_init: str = "unigram"

    @property
    def tokenizer_source(self) -> str:
        """Where the tokenizer comes from (tokenizer_name_or_path, else model_name_or_path)."""
        return self.tokenizer_name_or_path or self.model_name_or_path

    @property
    def tokenizer_field(self) -> str:
        """The field tokenizer_source came from (for error messages)."""
        return "tokenizer_name_or_path" if self.tokenizer_name_or_path else "model_name_or_path"


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + learning-rate schedule."""

    max_lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_rate: float = 0.01
    # Derived: int(warmup_rate * max_steps), unless given in steps (the Trainer's --warmup_steps).
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
    """Batch sizes, the step cadence and the samples each split provides (global steps unless noted)."""

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
    # Batches per evaluation (`eval_iters`); the final test reads 10x as many.
    eval_iters: int = 10
    save_steps: int = 500
    checkpoint_steps: int = 500
    # Per-rank eval batch; 0 = micro_batch_size (the Trainer has its own --per_device_eval_batch_size).
    eval_batch_size: int = 0
    # The original counts eval_iters in global batches (x accumulate_steps); the Trainer in micro-batches.
    eval_iters_in_global_batches: bool = True
    # Whether the run trains (the Trainer may only evaluate) and ends with a test evaluation.
    train: bool = True
    final_test: bool = True

    @property
    def eval_micro_batch_size(self) -> int:
        """Samples per eval micro-batch on each rank."""
        return self.eval_batch_size or self.micro_batch_size

    @property
    def eval_micro_batches(self) -> int:
        """Micro-batches per evaluation on each rank."""
        return self.eval_iters * (self.accumulate_steps if self.eval_iters_in_global_batches else 1)

    @property
    def test_micro_batches(self) -> int:
        """Micro-batches of the final test on each rank (the original's test_iters = eval_iters * 10)."""
        return self.eval_micro_batches * 10

    @property
    def num_evaluations(self) -> int:
        """Evaluations a full run performs: every multiple of eval_freq up to max_steps, at least one if enabled."""
        return max(1, self.max_steps // self.eval_freq) if self.eval_freq > 0 else 0

    @property
    def samples_per_evaluation(self) -> int:
        """Valid samples one evaluation reads across all ranks."""
        return self.eval_micro_batch_size * self.eval_micro_batches * self.data_world_size

    def requested_samples(self) -> Tuple[int, int, int]:
        """Samples the (train, valid, test) splits must provide (REFERENCE §5, without the spare evaluation; 0 = unused)."""
        train = self.global_batch_size * self.max_steps if self.train else 0
        valid = self.samples_per_evaluation * self.num_evaluations
        test = self.samples_per_evaluation * 10 if self.final_test else 0
        return train, valid, test

    def train_offset(self, global_step: int) -> int:
        """Consumed train samples after `global_step` steps (where a resumed run starts reading)."""
        return self.global_batch_size * global_step

    def valid_offset(self, global_step: int) -> int:
        """Valid samples consumed by the evaluations at steps <= `global_step` (the original's `(step+1)` dropped, §18.3)."""
        evaluations_done = global_step // self.eval_freq if self.eval_freq > 0 else 0
        return self.samples_per_evaluation * evaluations_done


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the run executes."""

    device: str = "gpu"
    seed: int = 1234
    num_workers: int = 2
    # Mixed precision (GPU only: on CPU Paddle stays fp32 and we say so).
    use_amp: bool = False
    # float16 (with dynamic loss scaling) or bfloat16 (none); see ernie1.pretrain.amp.
    amp_dtype: str = "float16"
    fp16_opt_level: str = "O2"
    # Initial loss scale of the dynamic GradScaler (float16 only).
    scale_loss: float = 32768.0
    # Training micro-batches packed into fewer rows (ernie1/data/collate.py); evaluation stays unpacked.
    pack_samples: bool = False
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
    # Forces both dropouts to 0 (already applied to ModelConfig).
    check_accuracy: bool = False


def _default_data_config() -> Any:
    return None


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run needs, validated and derived once."""

    model: ModelConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    runtime: RuntimeConfig
    # ernie1.data.dataset_config.ErnieDatasetConfig (input_dir, split, max_seq_length, masking, seed, ...).
    data: Any = field(default_factory=_default_data_config)

    def to_dict(self) -> dict:
        """Plain nested dict (for printing, VisualDL text records and saving next to checkpoints)."""
        result = {}
        for part in ("model", "optim", "schedule", "runtime", "data"):
            value = getattr(self, part)
            result[part] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return result


def _require(condition: bool, field_name: str, template: str, *other_fields: str) -> None:
    if not condition:
        raise FieldError(field_name, template, *other_fields)


def _validate(v: Mapping[str, Any]) -> None:
    """Checks of single values and pairs; names are config fields, rendered as flags by the CLI."""
    _require(
        v["num_train_epochs"] is None,
        "num_train_epochs",
        "{num_train_epochs} is not supported: set the training length with {max_steps}",
        "max_steps",
    )
    _require(
        v["max_steps"] > 0,
        "max_steps",
        f"{{max_steps}} must be positive, got {v['max_steps']} (the datasets are sized from it; epochs are not used)",
    )
    _require(
        v["max_lr"] >= v["min_lr"],
        "min_lr",
        f"{{min_lr}} {v['min_lr']} must not exceed {{max_lr}} {v['max_lr']}",
        "max_lr",
    )
    _require(v["min_lr"] >= 0, "min_lr", f"{{min_lr}} must be >= 0, got {v['min_lr']}")
    _require(
        v["decay_steps"] is None or v["decay_steps"] > 0,
        "decay_steps",
        f"{{decay_steps}} must be positive, got {v['decay_steps']}",
    )
    _require(
        0.0 <= v["warmup_rate"] <= 1.0, "warmup_rate", f"{{warmup_rate}} must be within [0, 1], got {v['warmup_rate']}"
    )
    _require(v["max_seq_len"] >= 8, "max_seq_len", f"{{max_seq_len}} must be at least 8, got {v['max_seq_len']}")
    _require(
        0.0 <= v["masked_lm_prob"] < 1.0,
        "masked_lm_prob",
        f"{{masked_lm_prob}} must be within [0, 1), got {v['masked_lm_prob']}",
    )
    _require(
        0.0 <= v["short_seq_prob"] <= 1.0,
        "short_seq_prob",
        f"{{short_seq_prob}} must be within [0, 1], got {v['short_seq_prob']}",
    )
    _require(v["max_ngrams"] >= 1, "max_ngrams", f"{{max_ngrams}} must be >= 1, got {v['max_ngrams']}")
    _require(v["logging_freq"] > 0, "logging_freq", f"{{logging_freq}} must be positive, got {v['logging_freq']}")
    for name in (
        "eval_freq",
        "eval_iters",
        "save_steps",
        "checkpoint_steps",
        "num_workers",
        "grad_clip",
        "weight_decay",
    ):
        _require(v[name] >= 0, name, f"{{{name}}} must be >= 0, got {v[name]}")
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        _require(0.0 <= v[name] < 1.0, name, f"{{{name}}} must be within [0, 1), got {v[name]}")
    _require(v["scale_loss"] > 0, "scale_loss", f"{{scale_loss}} must be positive, got {v['scale_loss']}")
    _require(
        v["model_type"] in MODEL_TYPES, "model_type", f"{{model_type}} {v['model_type']}: only ernie is supported"
    )
    for name in ("lr_decay_style", "data_impl", "attention_impl", "amp_dtype", "fp16_opt_level", "mlm_bias_init"):
        choices = FLAGS_BY_NAME[name].choices
        _require(v[name] in choices, name, f"{{{name}}} must be one of {', '.join(choices)}, got {v[name]!r}")
    _require(
        bool(v["input_dir"]),
        "input_dir",
        "{input_dir} is required: a directory of *_idx.npz files or a data prefix",
    )
    _require(
        not (v["config_name"] and v["model_config"]),
        "config_name",
        "{config_name} and {model_config} both override the model config: pass only one",
        "model_config",
    )


def _check_parallel_degrees(v: Mapping[str, Any], world_size: int) -> None:
    # Dygraph and our static script are data parallel only (as the original dygraph script).
    for name in ("mp_degree", "pp_degree", "sharding_degree"):
        _require(v[name] == 1, name, f"{{{name}}} {v[name]}: only data parallelism is supported; leave it at 1")
    _require(
        v["dp_degree"] in (1, world_size),
        "dp_degree",
        f"{{dp_degree}} {v['dp_degree']} must equal the number of launched processes ({world_size}) or be 1",
    )


def derive_accumulate_steps(
    global_batch_size: Optional[int], micro_batch_size: int, data_world_size: int
) -> Tuple[int, int]:
    """(global_batch_size, accumulate_steps): None means world x micro; the global batch must split evenly."""
    _require(
        micro_batch_size > 0, "micro_batch_size", f"{{micro_batch_size}} must be positive, got {micro_batch_size}"
    )
    per_step = micro_batch_size * data_world_size
    if global_batch_size is None:
        return per_step, 1
    _require(
        global_batch_size > 0 and global_batch_size % per_step == 0,
        "global_batch_size",
        f"{{global_batch_size}} {global_batch_size} must be a positive multiple of {{micro_batch_size}} x data "
        f"parallel ranks = {micro_batch_size} x {data_world_size} = {per_step}",
        "micro_batch_size",
    )
    return global_batch_size, global_batch_size // per_step


def derive_warmup_steps(warmup_rate: float, max_steps: int) -> int:
    """warmup_steps = int(warmup_rate * max_steps)."""
    return int(warmup_rate * max_steps)


def _from_values(cls: Any, v: Mapping[str, Any], **derived: Any) -> Any:
    """An instance of the dataclass `cls`: each field from the flag value of the same name, unless derived."""
    names = {item.name for item in dataclasses.fields(cls)}
    return cls(**{**{name: v[name] for name in names if name in v}, **derived})


def build_data_config(v: Mapping[str, Any], global_batch_size: int) -> Any:
    """ernie1.data.dataset_config.ErnieDatasetConfig from the data fields (its max_seq_length is our max_seq_len;
    global_batch_size and max_steps place the train samples on the masking schedule)."""
    from ernie1.data.dataset_config import ErnieDatasetConfig

    return _from_values(ErnieDatasetConfig, v, max_seq_length=v["max_seq_len"], global_batch_size=global_batch_size)


def build_config(
    values: Mapping[str, Any],
    world_size: int = 1,
    *,
    data_world_size: Optional[int] = None,
    warmup_steps: Optional[int] = None,
    eval_batch_size: int = 0,
    eval_iters_in_global_batches: bool = True,
    train: bool = True,
    final_test: bool = True,
) -> PretrainConfig:
    """Validate the flag values (config-field names; missing ones take their defaults) and derive the typed config.

    The keyword arguments are what only the Trainer knows: its data world size, warmup in steps, eval batch size and
    counting, and whether it trains and tests (`--do_train`, `--do_predict`).
    """
    v = {**defaults(), **{key: value for key, value in values.items()}}
    _validate(v)
    _check_parallel_degrees(v, world_size)
    data_world_size = world_size if data_world_size is None else data_world_size
    hidden_dropout, attention_dropout = v["hidden_dropout_prob"], v["attention_probs_dropout_prob"]
    if v["check_accuracy"]:
        logger.warning("--check_accuracy true: both dropout probabilities forced to 0")
        hidden_dropout = attention_dropout = 0.0
    model = _from_values(
        ModelConfig,
        v,
        model_config=v["model_config"] or v["config_name"],
        hidden_dropout_prob=hidden_dropout,
        attention_probs_dropout_prob=attention_dropout,
    )
    global_batch_size, accumulate_steps = derive_accumulate_steps(
        v["global_batch_size"], v["micro_batch_size"], data_world_size
    )
    schedule = _from_values(
        ScheduleConfig,
        v,
        global_batch_size=global_batch_size,
        accumulate_steps=accumulate_steps,
        data_world_size=data_world_size,
        eval_batch_size=eval_batch_size,
        eval_iters_in_global_batches=eval_iters_in_global_batches,
        train=train,
        final_test=final_test,
    )
    optim = _from_values(
        OptimConfig,
        v,
        warmup_steps=warmup_steps if warmup_steps else derive_warmup_steps(v["warmup_rate"], v["max_steps"]),
        decay_steps=v["decay_steps"] if v["decay_steps"] is not None else v["max_steps"],
    )
    runtime = _from_values(
        RuntimeConfig, v, scale_loss=float(v["scale_loss"]), world_size=world_size, dp_degree=world_size
    )
    return PretrainConfig(model, optim, schedule, runtime, build_data_config(v, global_batch_size))
