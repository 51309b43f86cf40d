"""Every pretraining flag, declared once (the original's names, REFERENCE §1.1-1.2).

`args.py` builds its argparse parser from this table and the Trainer script its PdArgumentParser dataclasses
(`ernie1.pretrain.trainer.arguments`); both collect the values under these names (the config-field names) and end
in `ernie1.pretrain.config.build_config`. A flag's `trainer` name is what a Trainer user types: one we declare
(`trainer_declares`), or a paddlenlp `TrainingArguments` field whose value we read.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from ernie1.common.errors import FieldError, ToolkitError

LR_DECAY_STYLES = ("linear", "cosine", "none")
FP16_OPT_LEVELS = ("O1", "O2")
AMP_DTYPES = ("float16", "bfloat16")
ATTENTION_IMPLS = ("auto", "paddle", "sdpa")
DEVICES = ("cpu", "gpu", "xpu", "mlu", "npu")
MODEL_TYPES = ("ernie",)
DATA_IMPLS = ("mmap", "lazy")
MLM_BIAS_INITS = ("unigram", "zeros")

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


@dataclass(frozen=True)
class Flag:
    """One pretraining flag: its config-field name (= the argparse flag) and how each CLI exposes it."""

    name: str
    # int, float, str, bool (parsed with str2bool by argparse, paddlenlp's string_to_bool by the Trainer).
    type: Callable[[str], Any]
    default: Any
    help: str
    group: str
    choices: Tuple[str, ...] = ()
    required: bool = False
    # Accepted by argparse but kept out of --help (e.g. --num_train_epochs, refused with a pointer).
    hidden: bool = False
    in_argparse: bool = True
    # The Trainer's name for this value (None: the Trainer script has no such flag).
    trainer: Optional[str] = None
    # True: our Trainer dataclasses declare it; False: a paddlenlp TrainingArguments field.
    trainer_declares: bool = False
    # The Trainer dataclass default where it must differ (paddlenlp compares decay_steps > 0).
    trainer_default: Any = None


def _ours(name: str = "", default: Any = None) -> Dict[str, Any]:
    """Keyword arguments for a flag the Trainer dataclasses declare (under `name`, default the same)."""
    return {"trainer": name or None, "trainer_declares": True, "trainer_default": default}


def _paddlenlp(name: str) -> Dict[str, Any]:
    """Keyword arguments for a value the Trainer reads from paddlenlp's TrainingArguments field `name`."""
    return {"trainer": name}


_MODEL_DIR_HELP = (
    "ernie-1.0 / ernie-1.0-base-zh (random init from the built-in config, no download) or a checkpoint dir."
)
_MODEL_CONFIG_HELP = (
    "Model config overrides: a JSON file, a JSON object, or inline 'hidden_size=64,num_hidden_layers=2'."
)

FLAGS: Tuple[Flag, ...] = (
    # model
    Flag("model_type", str, "ernie", "Model family (only ernie).", "model", MODEL_TYPES, **_ours()),
    Flag("model_name_or_path", str, "ernie-1.0", _MODEL_DIR_HELP, "model", **_ours()),
    Flag(
        "tokenizer_name_or_path",
        str,
        None,
        "Tokenizer dir or vocab file; defaults to --model_name_or_path.",
        "model",
        **_ours(),
    ),
    Flag(
        "config_name",
        str,
        None,
        "A JSON model config file whose fields override the base config (Trainer name of --model_config).",
        "model",
        in_argparse=False,
        **_ours(),
    ),
    Flag("model_config", str, None, _MODEL_CONFIG_HELP, "model", **_ours()),
    Flag(
        "continue_training",
        bool,
        False,
        "Warm start from trained weights (a checkpoint dir in --model_name_or_path always loads its weights).",
        "model",
        **_ours(),
    ),
    Flag("binary_head", bool, True, "Sentence-order prediction head and loss.", "model", **_ours()),
    Flag("hidden_dropout_prob", float, 0.1, "Hidden dropout probability.", "model", **_ours()),
    Flag("attention_probs_dropout_prob", float, 0.1, "Attention dropout probability.", "model", **_ours()),
    Flag("check_accuracy", bool, False, "Force both dropouts to 0 (debugging).", "model"),
    Flag(
        "attention_impl",
        str,
        "auto",
        "Self-attention: paddle (nn.MultiHeadAttention), sdpa (scaled_dot_product_attention: flash attention on GPU "
        "under fp16/bf16), or auto (the fastest on the device: sdpa on GPU and CPU). Same weights either way.",
        "model",
        ATTENTION_IMPLS,
        **_ours(),
    ),
    Flag(
        "mlm_bias_init",
        str,
        "unigram",
        "MLM decoder bias of a fresh model: unigram (the centred log token frequencies of the train split, so the "
        "encoder need not spend its first steps learning them) or zeros (paddlenlp's init). A loaded or resumed "
        "checkpoint keeps its own bias.",
        "model",
        MLM_BIAS_INITS,
        **_ours(),
    ),
    Flag(
        "use_recompute",
        bool,
        False,
        "Recompute encoder activations in backward.",
        "model",
        **_paddlenlp("recompute"),
    ),
    # data
    Flag(
        "input_dir",
        str,
        None,
        "Directory of *_idx.npz/_ids.npy files, or 'w1 prefix1 w2 prefix2 ...'.",
        "data",
        required=True,
        **_ours(),
    ),
    Flag(
        "output_dir",
        str,
        None,
        "Checkpoints, VisualDL logs and the resolved config go here.",
        "data",
        required=True,
        **_paddlenlp("output_dir"),
    ),
    Flag("split", str, "949,50,1", "train,valid,test document ratios ('/' also accepted).", "data", **_ours()),
    Flag(
        "max_seq_len",
        int,
        512,
        "Tokens per sample, [CLS]/[SEP] included.",
        "data",
        **_ours("max_seq_length"),
    ),
    Flag("masked_lm_prob", float, 0.15, "Fraction of tokens to predict.", "data", **_ours()),
    Flag("short_seq_prob", float, 0.1, "Probability of a shorter target length.", "data", **_ours()),
    Flag("favor_longer_ngram", bool, False, "Favour longer masked n-grams.", "data", **_ours()),
    Flag("max_ngrams", int, 3, "Longest masked n-gram.", "data", **_ours()),
    Flag(
        "masking_level",
        str,
        "word",
        "Masking units: char, word, phrase, entity, or a mix like word:0.6,phrase:0.2,entity:0.2.",
        "data",
        **_ours(),
    ),
    Flag(
        "masking_schedule",
        str,
        "",
        "Staged masking over the run's steps instead of --masking_level, e.g. char:0-0.3,phrase:0.3-0.6,entity:0.6-1.",
        "data",
        **_ours(),
    ),
    Flag(
        "knowledge_mask_share",
        float,
        1.0,
        "Phrase/entity level: share of the masking budget whole spans take first (1 = all that fit); words fill the rest.",
        "data",
        **_ours(),
    ),
    Flag(
        "share_folder",
        bool,
        False,
        "Data on a shared filesystem: global rank 0 builds the index maps.",
        "data",
        **_ours(),
    ),
    Flag("data_impl", str, "mmap", "Accepted for compatibility; always mmap.", "data", DATA_IMPLS, **_ours()),
    Flag("num_workers", int, 2, "DataLoader worker processes.", "data", **_paddlenlp("dataloader_num_workers")),
    # optimisation
    Flag(
        "micro_batch_size",
        int,
        8,
        "Samples per forward/backward on each data rank.",
        "optimisation",
        **_paddlenlp("per_device_train_batch_size"),
    ),
    Flag(
        "global_batch_size",
        int,
        None,
        "Samples per optimizer step; None = world x micro.",
        "optimisation",
        **_paddlenlp("per_device_train_batch_size / --gradient_accumulation_steps"),
    ),
    Flag("max_lr", float, 1e-4, "Peak learning rate.", "optimisation", **_paddlenlp("learning_rate")),
    Flag(
        "min_lr",
        float,
        1e-5,
        "The learning rate decays to this value.",
        "optimisation",
        **_ours("min_learning_rate"),
    ),
    Flag(
        "warmup_rate",
        float,
        0.01,
        "warmup_steps = warmup_rate x max_steps.",
        "optimisation",
        **_paddlenlp("warmup_ratio"),
    ),
    Flag(
        "lr_decay_style",
        str,
        "linear",
        "Decay after warmup to min_lr: linear, cosine, none.",
        "optimisation",
        LR_DECAY_STYLES,
        **_ours(),
    ),
    Flag(
        "decay_steps",
        int,
        None,
        "Step at which lr reaches min_lr; defaults to --max_steps.",
        "optimisation",
        # 0 rather than None for the Trainer: Trainer.create_scheduler compares `args.decay_steps > 0`.
        **_ours(default=0),
    ),
    Flag("max_steps", int, 500000, "Optimizer steps of the run.", "optimisation", **_paddlenlp("max_steps")),
    Flag("num_train_epochs", int, None, "Not supported: use --max_steps.", "optimisation", hidden=True),
    Flag("weight_decay", float, 0.0, "AdamW weight decay.", "optimisation", **_paddlenlp("weight_decay")),
    Flag("grad_clip", float, 0.0, "Global-norm clip; 0 disables.", "optimisation", **_paddlenlp("max_grad_norm")),
    Flag("adam_beta1", float, 0.9, "AdamW beta1.", "optimisation", **_paddlenlp("adam_beta1")),
    Flag("adam_beta2", float, 0.999, "AdamW beta2.", "optimisation", **_paddlenlp("adam_beta2")),
    Flag("adam_epsilon", float, 1e-8, "AdamW epsilon.", "optimisation", **_paddlenlp("adam_epsilon")),
    # cadence (global steps)
    Flag("logging_freq", int, 1, "A log line every N steps.", "cadence", **_paddlenlp("logging_steps")),
    Flag(
        "eval_freq",
        int,
        500,
        "Evaluate on the valid split every N steps; 0 disables.",
        "cadence",
        **_paddlenlp("eval_steps"),
    ),
    Flag(
        "eval_iters",
        int,
        10,
        "Batches per evaluation; the final test runs 10x this.",
        "cadence",
        **_ours(),
    ),
    Flag(
        "save_steps",
        int,
        500,
        "Permanent model_<step> snapshots every N steps; 0 disables.",
        "cadence",
        **_paddlenlp("save_steps"),
    ),
    Flag(
        "checkpoint_steps",
        int,
        500,
        "Rolling model_last every N steps; 0 disables.",
        "cadence",
        **_paddlenlp("save_steps"),
    ),
    # runtime
    Flag("device", str, "gpu", "Device to run on.", "runtime", DEVICES, **_paddlenlp("device")),
    Flag("seed", int, 1234, "Seed of model init, data order and dropout.", "runtime", **_paddlenlp("seed")),
    Flag("use_amp", bool, False, "Mixed precision (GPU; a no-op on CPU).", "runtime", **_paddlenlp("fp16")),
    Flag(
        "amp_dtype",
        str,
        "float16",
        "Half-precision dtype under --use_amp: float16 (with loss scaling) or bfloat16 (no loss scaling; Ampere+).",
        "runtime",
        AMP_DTYPES,
        # The Trainer's switches: --fp16 (float16) or --bf16 (bfloat16).
        **_paddlenlp("bf16"),
    ),
    Flag(
        "fp16_opt_level",
        str,
        "O2",
        "AMP level: O1 (autocast lists) or O2 (half-precision weights, fp32 master weights in the optimizer).",
        "runtime",
        FP16_OPT_LEVELS,
        **_paddlenlp("fp16_opt_level"),
    ),
    Flag("scale_loss", float, 32768, "Initial loss scale under float16 AMP.", "runtime", **_paddlenlp("scale_loss")),
    Flag(
        "pack_samples",
        bool,
        False,
        "Pack each micro-batch's samples into as few rows of --max_seq_len as first-fit needs (block-diagonal "
        "attention, positions restarting per sample): same losses and gradients, fewer padded tokens. Dygraph only.",
        "runtime",
        **_ours(),
    ),
    Flag("use_sharding", bool, False, "Static graph only.", "runtime"),
    Flag("enable_addto", bool, True, "Static graph build strategy.", "runtime"),
    Flag("sharding_degree", int, 1, "Sharding degree (only 1).", "runtime"),
    Flag("dp_degree", int, 1, "Data-parallel degree (1 or the launched processes).", "runtime"),
    Flag("mp_degree", int, 1, "Model-parallel degree (only 1).", "runtime"),
    Flag("pp_degree", int, 1, "Pipeline-parallel degree (only 1).", "runtime"),
)

FLAGS_BY_NAME: Dict[str, Flag] = {flag.name: flag for flag in FLAGS}


def argparse_flag_name(field: str) -> str:
    """How args.py users spell the flag of a config field."""
    return f"--{field}"


def trainer_flag_name(field: str) -> str:
    """How Trainer users spell the flag of a config field (its own name where the Trainer has no other)."""
    flag = FLAGS_BY_NAME.get(field)
    return f"--{flag.trainer}" if flag is not None and flag.trainer else f"--{field}"


def defaults() -> Dict[str, Any]:
    """Every flag's default, by config-field name."""
    return {flag.name: flag.default for flag in FLAGS}


@contextlib.contextmanager
def rendered_field_errors(flag_name: Callable[[str], str]) -> Iterator[None]:
    """Inside the block, configuration FieldErrors become ToolkitErrors naming the flags of one CLI."""
    try:
        yield
    except FieldError as error:
        raise ToolkitError(error.render(flag_name)) from None
