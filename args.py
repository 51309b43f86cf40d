"""Every pretraining flag, once, with the original's names (REFERENCE §1.1), parsed into a typed `PretrainConfig`.

Fixed traps of the original: `--continue_training` is a real boolean, `max_lr >= min_lr` by default,
`--lr_decay_style` is honoured (linear, cosine, none), `--max_seq_len` defaults to 512 (ERNIE 1.0 has 513 positions),
and `--num_train_epochs` (never used) is refused with a pointer to `--max_steps`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any, List, Optional, Sequence

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.config import (
    DEVICES,
    FP16_OPT_LEVELS,
    LR_DECAY_STYLES,
    ModelSpec,
    OptimConfig,
    PretrainConfig,
    RuntimeSpec,
    ScheduleConfig,
    derive_accumulate_steps,
    derive_warmup_steps,
)

logger = logging.getLogger("ernie1")

_TRUE = ("yes", "true", "t", "y", "1")
_FALSE = ("no", "false", "f", "n", "0")


def str2bool(value: Any) -> bool:
    """yes/true/t/y/1 or no/false/f/n/0 (case-insensitive), as the original's str2bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line ToolkitErrors instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ToolkitError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with the original's flag names and (fixed) defaults."""
    parser = _Parser(description="ERNIE 1.0 pretraining (dygraph and static graph share these flags).")
    add = parser.add_argument
    group = parser.add_argument_group("model")
    add = group.add_argument
    add("--model_type", default="ernie", choices=["ernie"], help="Model family (only ernie).")
    add(
        "--model_name_or_path",
        default="ernie-1.0",
        help="ernie-1.0 / ernie-1.0-base-zh (random init from the built-in config, no download) or a checkpoint dir.",
    )
    add(
        "--tokenizer_name_or_path", default=None, help="Tokenizer dir or vocab file; defaults to --model_name_or_path."
    )
    add(
        "--model_config",
        default=None,
        help="Model config overrides: a JSON file, a JSON object, or inline 'hidden_size=64,num_hidden_layers=2'.",
    )
    add(
        "--continue_training",
        type=str2bool,
        default=False,
        help="Warm start from trained weights (a checkpoint dir in --model_name_or_path always loads its weights).",
    )
    add("--binary_head", type=str2bool, default=True, help="Sentence-order prediction head and loss.")
    add("--hidden_dropout_prob", type=float, default=0.1)
    add("--attention_probs_dropout_prob", type=float, default=0.1)
    add("--check_accuracy", type=str2bool, default=False, help="Force both dropouts to 0 (debugging).")
    add("--use_recompute", type=str2bool, default=False, help="Recompute encoder activations in backward.")

    group = parser.add_argument_group("data")
    add = group.add_argument
    add("--input_dir", required=True, help="Directory of *_idx.npz/_ids.npy files, or 'w1 prefix1 w2 prefix2 ...'.")
    add("--output_dir", required=True, help="Checkpoints, VisualDL logs and the resolved config go here.")
    add("--split", default="949,50,1", help="train,valid,test document ratios ('/' also accepted).")
    add("--max_seq_len", type=int, default=512, help="Tokens per sample, [CLS]/[SEP] included.")
    add("--masked_lm_prob", type=float, default=0.15)
    add("--short_seq_prob", type=float, default=0.1)
    add("--favor_longer_ngram", type=str2bool, default=False)
    add("--max_ngrams", type=int, default=3)
    add(
        "--masking_level",
        default="word",
        help="Masking units: char, word, phrase, entity, or a mix like word:0.6,phrase:0.2,entity:0.2.",
    )
    add("--share_folder", type=str2bool, default=False, help="Data on a shared filesystem: global rank 0 builds maps.")
    add("--data_impl", default="mmap", choices=["mmap", "lazy"], help="Accepted for compatibility; always mmap.")
    add("--num_workers", type=int, default=2, help="DataLoader worker processes.")

    group = parser.add_argument_group("optimisation")
    add = group.add_argument
    add("--micro_batch_size", type=int, default=8, help="Samples per forward/backward on each data rank.")
    add("--global_batch_size", type=int, default=None, help="Samples per optimizer step; None = world x micro.")
    add("--max_lr", type=float, default=1e-4)
    add("--min_lr", type=float, default=1e-5)
    add("--warmup_rate", type=float, default=0.01, help="warmup_steps = warmup_rate x max_steps.")
    add("--lr_decay_style", default="linear", choices=list(LR_DECAY_STYLES), help="Decay after warmup to min_lr.")
    add("--decay_steps", type=int, default=None, help="Step at which lr reaches min_lr; defaults to --max_steps.")
    add("--max_steps", type=int, default=500000)
    add("--num_train_epochs", type=int, default=None, help=argparse.SUPPRESS)
    add("--weight_decay", type=float, default=0.0)
    add("--grad_clip", type=float, default=0.0, help="Global-norm clip; 0 disables.")
    add("--adam_beta1", type=float, default=0.9)
    add("--adam_beta2", type=float, default=0.999)
    add("--adam_epsilon", type=float, default=1e-8)

    group = parser.add_argument_group("cadence (global steps)")
    add = group.add_argument
    add("--logging_freq", type=int, default=1)
    add("--eval_freq", type=int, default=500, help="Evaluate on the valid split every N steps; 0 disables.")
    add("--eval_iters", type=int, default=10, help="Global batches per evaluation; the final test runs 10x this.")
    add("--save_steps", type=int, default=500, help="Permanent model_<step> snapshots every N steps; 0 disables.")
    add("--checkpoint_steps", type=int, default=500, help="Rolling model_last every N steps; 0 disables.")

    group = parser.add_argument_group("runtime")
    add = group.add_argument
    add("--device", default="gpu", choices=list(DEVICES))
    add("--seed", type=int, default=1234)
    add("--use_amp", type=str2bool, default=False, help="Mixed precision (GPU; a no-op on CPU).")
    add("--fp16_opt_level", default="O2", choices=list(FP16_OPT_LEVELS))
    add("--scale_loss", type=float, default=32768, help="Initial loss scale under AMP.")
    add("--use_sharding", type=str2bool, default=False, help="Static graph only.")
    add("--enable_addto", type=str2bool, default=True, help="Static graph build strategy.")
    add("--sharding_degree", type=int, default=1)
    add("--dp_degree", type=int, default=1)
    add("--mp_degree", type=int, default=1)
    add("--pp_degree", type=int, default=1)
    return parser


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ToolkitError(message)


def _validate(ns: argparse.Namespace) -> None:
    _require(
        ns.num_train_epochs is None, "--num_train_epochs is not supported: set the training length with --max_steps"
    )
    _require(ns.max_steps > 0, f"--max_steps must be positive, got {ns.max_steps}")
    _require(ns.max_lr >= ns.min_lr, f"--min_lr {ns.min_lr} must not exceed --max_lr {ns.max_lr}")
    _require(ns.min_lr >= 0, f"--min_lr must be >= 0, got {ns.min_lr}")
    _require(ns.decay_steps is None or ns.decay_steps > 0, f"--decay_steps must be positive, got {ns.decay_steps}")
    _require(8 <= ns.max_seq_len, f"--max_seq_len must be at least 8, got {ns.max_seq_len}")
    _require(0.0 <= ns.masked_lm_prob < 1.0, f"--masked_lm_prob must be within [0, 1), got {ns.masked_lm_prob}")
    _require(0.0 <= ns.short_seq_prob <= 1.0, f"--short_seq_prob must be within [0, 1], got {ns.short_seq_prob}")
    _require(ns.max_ngrams >= 1, f"--max_ngrams must be >= 1, got {ns.max_ngrams}")
    for flag in ("logging_freq",):
        _require(getattr(ns, flag) > 0, f"--{flag} must be positive, got {getattr(ns, flag)}")
    for flag in (
        "eval_freq",
        "eval_iters",
        "save_steps",
        "checkpoint_steps",
        "num_workers",
        "grad_clip",
        "weight_decay",
    ):
        _require(getattr(ns, flag) >= 0, f"--{flag} must be >= 0, got {getattr(ns, flag)}")
    for flag in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        _require(0.0 <= getattr(ns, flag) < 1.0, f"--{flag} must be within [0, 1), got {getattr(ns, flag)}")
    _require(ns.scale_loss > 0, f"--scale_loss must be positive, got {ns.scale_loss}")


def _check_parallel_degrees(ns: argparse.Namespace, world_size: int) -> None:
    # Dygraph and our static script are data parallel only (as the original dygraph script).
    for flag in ("mp_degree", "pp_degree", "sharding_degree"):
        _require(
            getattr(ns, flag) == 1,
            f"--{flag} {getattr(ns, flag)}: only data parallelism is supported; leave it at 1",
        )
    _require(
        ns.dp_degree in (1, world_size),
        f"--dp_degree {ns.dp_degree} must equal the number of launched processes ({world_size}) or be 1",
    )


def build_data_config(ns: argparse.Namespace, binary_head: bool) -> Any:
    """ernie1.data.dataset_config.ErnieDatasetConfig from the data flags."""
    values = {
        "input_dir": ns.input_dir,
        "split": ns.split,
        "max_seq_length": ns.max_seq_len,
        "masked_lm_prob": ns.masked_lm_prob,
        "short_seq_prob": ns.short_seq_prob,
        "max_ngrams": ns.max_ngrams,
        "favor_longer_ngram": ns.favor_longer_ngram,
        "binary_head": binary_head,
        "masking_level": ns.masking_level,
        "seed": ns.seed,
        "share_folder": ns.share_folder,
    }
    from ernie1.data.dataset_config import ErnieDatasetConfig

    names = {field.name for field in dataclasses.fields(ErnieDatasetConfig)}
    return ErnieDatasetConfig(**{key: value for key, value in values.items() if key in names})


def config_from_namespace(ns: argparse.Namespace, world_size: int = 1) -> PretrainConfig:
    """Validate a parsed namespace and derive the typed, frozen config."""
    _validate(ns)
    _check_parallel_degrees(ns, world_size)
    hidden_dropout, attention_dropout = ns.hidden_dropout_prob, ns.attention_probs_dropout_prob
    if ns.check_accuracy:
        logger.warning("--check_accuracy true: both dropout probabilities forced to 0")
        hidden_dropout = attention_dropout = 0.0
    model = ModelSpec(
        model_name_or_path=ns.model_name_or_path,
        tokenizer_name_or_path=ns.tokenizer_name_or_path,
        model_config=ns.model_config,
        model_type=ns.model_type,
        binary_head=ns.binary_head,
        hidden_dropout_prob=hidden_dropout,
        attention_probs_dropout_prob=attention_dropout,
        use_recompute=ns.use_recompute,
        continue_training=ns.continue_training,
    )
    data_world_size = world_size
    global_batch_size, accumulate_steps = derive_accumulate_steps(
        ns.global_batch_size, ns.micro_batch_size, data_world_size
    )
    schedule = ScheduleConfig(
        global_batch_size=global_batch_size,
        micro_batch_size=ns.micro_batch_size,
        accumulate_steps=accumulate_steps,
        data_world_size=data_world_size,
        max_steps=ns.max_steps,
        logging_freq=ns.logging_freq,
        eval_freq=ns.eval_freq,
        eval_iters=ns.eval_iters,
        save_steps=ns.save_steps,
        checkpoint_steps=ns.checkpoint_steps,
    )
    optim = OptimConfig(
        max_lr=ns.max_lr,
        min_lr=ns.min_lr,
        warmup_rate=ns.warmup_rate,
        warmup_steps=derive_warmup_steps(ns.warmup_rate, ns.max_steps),
        decay_steps=ns.decay_steps if ns.decay_steps is not None else ns.max_steps,
        lr_decay_style=ns.lr_decay_style,
        weight_decay=ns.weight_decay,
        grad_clip=ns.grad_clip,
        adam_beta1=ns.adam_beta1,
        adam_beta2=ns.adam_beta2,
        adam_epsilon=ns.adam_epsilon,
    )
    runtime = RuntimeSpec(
        device=ns.device,
        seed=ns.seed,
        num_workers=ns.num_workers,
        use_amp=ns.use_amp,
        fp16_opt_level=ns.fp16_opt_level,
        scale_loss=ns.scale_loss,
        output_dir=ns.output_dir,
        world_size=world_size,
        dp_degree=world_size,
        sharding_degree=ns.sharding_degree,
        mp_degree=ns.mp_degree,
        pp_degree=ns.pp_degree,
        use_sharding=ns.use_sharding,
        enable_addto=ns.enable_addto,
        check_accuracy=ns.check_accuracy,
    )
    return PretrainConfig(model, optim, schedule, runtime, build_data_config(ns, model.binary_head))


def parse_pretraining_args(argv: Optional[Sequence[str]] = None, world_size: Optional[int] = None) -> PretrainConfig:
    """Parse `argv` (None: sys.argv[1:]) into a validated PretrainConfig; errors are one-line ToolkitErrors."""
    from ernie1.pretrain.runtime import launched_world_size

    ns = build_parser().parse_args(None if argv is None else list(argv))
    return config_from_namespace(ns, launched_world_size() if world_size is None else world_size)


def flag_names() -> List[str]:
    """All long flag names (for compatibility tests)."""
    return sorted(option for action in build_parser()._actions for option in action.option_strings)
