"""The paddlenlp-Trainer pretraining path (REFERENCE §14): PdArgumentParser dataclasses -> the shared typed config,
ordered samplers that resume at the consumed samples exactly once, a cached eval stream, and lm + sop as the loss.

The Trainer runs the loop, checkpoints (`output_dir/checkpoint-<step>`) and resume; this module only plugs the shared
pieces into its hooks: `_get_train_sampler`, `_get_eval_sampler`, `evaluate`, and a `TrainerCallback` for the
per-step lm/sop losses (`metrics.jsonl`, as the dygraph script) and the tokenizer saved without the `##` extension.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import paddle
from paddlenlp.trainer import PdArgumentParser, Trainer, TrainerCallback, TrainingArguments
from paddlenlp.trainer.trainer_utils import PREFIX_CHECKPOINT_DIR, speed_metrics
from paddlenlp.utils.batch_sampler import DistributedBatchSampler as NlpDistributedBatchSampler

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.checkpoint import check_resume_compatible
from ernie1.pretrain.config import (
    LR_DECAY_STYLES,
    ModelSpec,
    OptimConfig,
    PretrainConfig,
    RuntimeSpec,
    ScheduleConfig,
    derive_warmup_steps,
)
from ernie1.pretrain.data import OrderedBatchSampler
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.text.tokenizer import save_tokenizer_files

logger = logging.getLogger("ernie1")

LOSS_NAMES = ("loss", "lm_loss", "sop_loss")
# Shared builders name the dygraph flags in their errors; a Trainer user typed these instead.
TRAINER_FLAG_NAMES = {
    r"--max_seq_len\b": "--max_seq_length",
    r"--warmup_rate\b": "--warmup_ratio",
    r"--max_lr\b": "--learning_rate",
    r"--min_lr\b": "--min_learning_rate",
    r"--micro_batch_size\b": "--per_device_train_batch_size",
    r"--grad_clip\b": "--max_grad_norm",
    r"--global_batch_size\b": "--per_device_train_batch_size / --gradient_accumulation_steps",
}
TRAINING_ARGS_FILE = "training_args.bin"
# The Trainer writes trainer_state.json, then the RNG states, last: a folder without both was cut short.
TRAINER_STATE_FILE = "trainer_state.json"
RNG_STATE_GLOB = "rng_state*.pth"


@dataclass
class ModelArguments:
    """Which model to pretrain (REFERENCE §1.2, plus `--model_config` and a real `--continue_training`)."""

    model_type: str = field(default="ernie", metadata={"help": "Model family (only ernie)."})
    model_name_or_path: str = field(
        default="ernie-1.0",
        metadata={"help": "ernie-1.0 / ernie-1.0-base-zh (built-in config, random init) or a checkpoint directory."},
    )
    tokenizer_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer dir or vocab file; defaults to --model_name_or_path."}
    )
    config_name: Optional[str] = field(
        default=None, metadata={"help": "A JSON model config file whose fields override the base config."}
    )
    model_config: Optional[str] = field(
        default=None,
        metadata={
            "help": "Model config overrides: a JSON file, a JSON object, or 'hidden_size=64,num_hidden_layers=2'."
        },
    )
    binary_head: bool = field(default=True, metadata={"help": "Sentence-order prediction head and loss."})
    hidden_dropout_prob: float = field(default=0.1, metadata={"help": "Hidden dropout probability."})
    attention_probs_dropout_prob: float = field(default=0.1, metadata={"help": "Attention dropout probability."})
    # The original read `args.continue_training` without declaring it (NameError, REFERENCE §18.11).
    continue_training: bool = field(
        default=False, metadata={"help": "Start from the weights in --model_name_or_path (a checkpoint directory)."}
    )

    def __post_init__(self) -> None:
        if self.model_type != "ernie":
            raise ToolkitError(f"--model_type {self.model_type}: only ernie is supported")
        if self.config_name and self.model_config:
            raise ToolkitError("--config_name and --model_config both override the model config: pass only one")
        for flag in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, flag)
            if not 0.0 <= value < 1.0:
                raise ToolkitError(f"--{flag} must be within [0, 1), got {value}")


@dataclass
class DataArguments:
    """Where the pretraining data is and how samples are built (REFERENCE §1.2)."""

    input_dir: str = field(
        default=None, metadata={"help": "Directory of *_idx.npz/_ids.npy files, or 'w1 prefix1 w2 prefix2 ...'."}
    )
    split: str = field(default="949,50,1", metadata={"help": "train,valid,test document ratios."})
    max_seq_length: int = field(default=512, metadata={"help": "Tokens per sample, [CLS]/[SEP] included."})
    masked_lm_prob: float = field(default=0.15, metadata={"help": "Fraction of tokens to predict."})
    short_seq_prob: float = field(default=0.1, metadata={"help": "Probability of a shorter target length."})
    favor_longer_ngram: bool = field(default=False, metadata={"help": "Favour longer masked n-grams."})
    max_ngrams: int = field(default=3, metadata={"help": "Longest masked n-gram."})
    masking_level: str = field(
        default="word", metadata={"help": "char, word, phrase, entity, or a mix like word:0.6,phrase:0.2,entity:0.2."}
    )
    share_folder: bool = field(
        default=False, metadata={"help": "Data on a shared filesystem: global rank 0 builds the index maps."}
    )
    data_impl: str = field(default="mmap", metadata={"help": "Accepted for compatibility; always mmap."})

    def __post_init__(self) -> None:
        if not self.input_dir:
            raise ToolkitError("--input_dir is required: a directory of *_idx.npz files or a data prefix")
        # ErnieDatasetConfig validates the rest, but names the dygraph flag (--max_seq_len) for this one.
        if self.max_seq_length < 8:
            raise ToolkitError(f"--max_seq_length must be at least 8, got {self.max_seq_length}")
        if self.data_impl not in ("mmap", "lazy"):
            raise ToolkitError(f"--data_impl must be mmap or lazy, got {self.data_impl}")


@dataclass
class PreTrainingArguments(TrainingArguments):
    """paddlenlp TrainingArguments plus the pretraining schedule (REFERENCE §1.2)."""

    min_learning_rate: float = field(default=1e-5, metadata={"help": "The learning rate decays to this value."})
    # 0 rather than the original's None: Trainer.create_scheduler compares `args.decay_steps > 0`.
    decay_steps: int = field(
        default=0, metadata={"help": "Step at which lr reaches --min_learning_rate; 0 means --max_steps."}
    )
    lr_decay_style: str = field(
        default="linear", metadata={"help": f"Decay after warmup: {', '.join(LR_DECAY_STYLES)}."}
    )
    eval_iters: int = field(
        default=10, metadata={"help": "Eval batches per evaluation; --do_predict runs 10x this on the test split."}
    )

    @property
    def test_iters(self) -> int:
        """Batches of the final test (the original's eval_iters * 10)."""
        return self.eval_iters * 10


class _ArgumentParser(PdArgumentParser):
    """PdArgumentParser whose errors are one-line ToolkitErrors instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ToolkitError(message)


def build_argument_parser() -> PdArgumentParser:
    """The parser over (ModelArguments, DataArguments, PreTrainingArguments)."""
    return _ArgumentParser((ModelArguments, DataArguments, PreTrainingArguments))


def parse_trainer_args(
    argv: Optional[Sequence[str]] = None,
) -> Tuple[ModelArguments, DataArguments, PreTrainingArguments]:
    """Parse flags into the three dataclasses; unknown flags and invalid values are one-line ToolkitErrors."""
    parser = build_argument_parser()
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(
            args=None if argv is None else list(argv), look_for_args_file=False
        )
    except ValueError as error:
        # TrainingArguments.__post_init__ and the unused-flags check raise ValueError with multi-line text.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ToolkitError(
            first_line.replace(
                "Some specified arguments are not used by the PdArgumentParser", "unrecognized arguments"
            )
        ) from None
    _validate_training_args(training_args)
    return model_args, data_args, training_args


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ToolkitError(message)


def _validate_training_args(args: PreTrainingArguments) -> None:
    _require(
        args.max_steps > 0,
        f"--max_steps must be positive, got {args.max_steps} (the datasets are sized from it; epochs are not used)",
    )
    _require(
        args.min_learning_rate <= args.learning_rate,
        f"--min_learning_rate {args.min_learning_rate} must not exceed --learning_rate {args.learning_rate}",
    )
    _require(args.min_learning_rate >= 0, f"--min_learning_rate must be >= 0, got {args.min_learning_rate}")
    _require(args.decay_steps >= 0, f"--decay_steps must be >= 0 (0: --max_steps), got {args.decay_steps}")
    _require(
        args.lr_decay_style in LR_DECAY_STYLES,
        f"--lr_decay_style must be one of {', '.join(LR_DECAY_STYLES)}, got {args.lr_decay_style!r}",
    )
    _require(0.0 <= args.warmup_ratio <= 1.0, f"--warmup_ratio must be within [0, 1], got {args.warmup_ratio}")
    _require(args.eval_iters > 0, f"--eval_iters must be positive, got {args.eval_iters}")
    _require(
        args.do_train or args.do_eval or args.do_predict,
        "nothing to do: pass --do_train (and/or --do_eval, --do_predict)",
    )
    if args.do_eval:
        _require(args.eval_steps is not None and args.eval_steps > 0, "--do_eval needs a positive --eval_steps")


def to_pretrain_config(
    model_args: ModelArguments, data_args: DataArguments, training_args: PreTrainingArguments
) -> PretrainConfig:
    """The shared typed config (the one the dygraph and static scripts build from args.py)."""
    from args import build_data_config

    model = ModelSpec(
        model_name_or_path=model_args.model_name_or_path,
        tokenizer_name_or_path=model_args.tokenizer_name_or_path,
        model_config=model_args.model_config or model_args.config_name,
        model_type=model_args.model_type,
        binary_head=model_args.binary_head,
        hidden_dropout_prob=model_args.hidden_dropout_prob,
        attention_probs_dropout_prob=model_args.attention_probs_dropout_prob,
        use_recompute=bool(training_args.recompute),
        continue_training=model_args.continue_training,
    )
    data_world_size = max(1, training_args.dataset_world_size)
    micro_batch_size = training_args.per_device_train_batch_size
    accumulate_steps = training_args.gradient_accumulation_steps
    warmup_steps = (
        training_args.warmup_steps
        if training_args.warmup_steps > 0
        else derive_warmup_steps(training_args.warmup_ratio, training_args.max_steps)
    )
    optim = OptimConfig(
        max_lr=training_args.learning_rate,
        min_lr=training_args.min_learning_rate,
        warmup_rate=training_args.warmup_ratio,
        warmup_steps=warmup_steps,
        decay_steps=training_args.decay_steps or training_args.max_steps,
        lr_decay_style=training_args.lr_decay_style,
        weight_decay=training_args.weight_decay,
        grad_clip=training_args.max_grad_norm,
        adam_beta1=training_args.adam_beta1,
        adam_beta2=training_args.adam_beta2,
        adam_epsilon=training_args.adam_epsilon,
    )
    schedule = ScheduleConfig(
        global_batch_size=global_batch_size(training_args),
        micro_batch_size=micro_batch_size,
        accumulate_steps=accumulate_steps,
        data_world_size=data_world_size,
        max_steps=training_args.max_steps,
        logging_freq=max(1, int(training_args.logging_steps)),
        eval_freq=int(training_args.eval_steps or 0) if training_args.do_eval else 0,
        eval_iters=training_args.eval_iters,
        save_steps=int(training_args.save_steps),
        checkpoint_steps=int(training_args.save_steps),
    )
    runtime = RuntimeSpec(
        device=training_args.device,
        seed=training_args.seed,
        num_workers=training_args.dataloader_num_workers,
        use_amp=bool(training_args.fp16 or training_args.bf16),
        fp16_opt_level=training_args.fp16_opt_level,
        scale_loss=float(training_args.scale_loss),
        output_dir=training_args.output_dir,
        world_size=max(1, training_args.world_size),
        dp_degree=data_world_size,
    )
    data = build_data_config(_DataFlags(data_args, training_args.seed), model.binary_head)
    return PretrainConfig(model, optim, schedule, runtime, data)


class _DataFlags:
    """The attribute names args.build_data_config reads, from the Trainer's DataArguments."""

    def __init__(self, data_args: DataArguments, seed: int):
        self.input_dir = data_args.input_dir
        self.split = data_args.split
        self.max_seq_len = data_args.max_seq_length
        self.masked_lm_prob = data_args.masked_lm_prob
        self.short_seq_prob = data_args.short_seq_prob
        self.max_ngrams = data_args.max_ngrams
        self.favor_longer_ngram = data_args.favor_longer_ngram
        self.masking_level = data_args.masking_level
        self.seed = seed
        self.share_folder = data_args.share_folder


def requested_samples(
    schedule: ScheduleConfig, eval_batch_size: int, eval_iters: int, do_eval: bool, do_predict: bool
) -> Tuple[int, int, int]:
    """(train, valid, test) samples a Trainer run reads (REFERENCE §14; eval batches are not x accumulation)."""
    per_eval = eval_batch_size * schedule.data_world_size * eval_iters
    train = schedule.global_batch_size * schedule.max_steps
    valid = per_eval * max(1, schedule.num_evaluations) if do_eval else 0
    test = per_eval * 10 if do_predict else 0
    return train, valid, test


def valid_offset(
    global_step: int, eval_steps: int, eval_iters: int, eval_batch_size: int, data_world_size: int
) -> int:
    """Valid samples consumed by the evaluations before the one at `global_step` (no off-by-one, REFERENCE §18.3)."""
    evaluations_done = max(0, (global_step - 1) // eval_steps) if eval_steps > 0 else 0
    return evaluations_done * eval_iters * eval_batch_size * data_world_size


class ResumableBatchSampler(OrderedBatchSampler, NlpDistributedBatchSampler):
    """The shared ordered sampler, typed as paddlenlp's DistributedBatchSampler so the Trainer positions it.

    On resume the Trainer calls `set_epoch(consumed_samples=step x global batch)` on a sampler of this type instead
    of reading and dropping the consumed batches; built at 0, the sampler therefore skips them exactly once
    (PaddleNLP #8980 skipped them twice).
    """

    def __init__(self, num_samples: int, micro_batch_size: int, data_rank: int = 0, data_world_size: int = 1):
        OrderedBatchSampler.__init__(self, num_samples, micro_batch_size, data_rank, data_world_size, 0)
        self.epoch = 0

    def __len__(self) -> int:
        # Batches of the whole epoch, as paddlenlp's sampler: the Trainer derives its step bookkeeping from this.
        return self.num_samples // self.global_micro_batch


class CriterionWrapper(paddle.nn.Layer):
    """The Trainer's criterion: `(outputs, (masked_lm_labels, next_sentence_labels))` -> lm + sop (lm alone
    without the binary head), keeping on-device sums of each part for the metrics callback."""

    def __init__(self, criterion: paddle.nn.Layer):
        super().__init__()
        self.criterion = criterion
        self._sums: Dict[str, Any] = {}
        self._counts: Dict[str, int] = {}

    def forward(self, outputs: Any, labels: Tuple[paddle.Tensor, paddle.Tensor]) -> paddle.Tensor:
        """Total loss for the Trainer; lm/sop parts are accumulated under 'train' (grad on) or 'eval' (no grad)."""
        if isinstance(outputs, (tuple, list)):
            prediction_scores, sop_scores = outputs[0], outputs[1] if len(outputs) > 1 else None
        else:
            prediction_scores, sop_scores = outputs, None
        masked_lm_labels, next_sentence_labels = labels
        total, lm_loss, sop_loss = self.criterion(
            prediction_scores, sop_scores, masked_lm_labels, next_sentence_labels
        )
        mode = "train" if paddle.is_grad_enabled() else "eval"
        # Kept on the device: a float() here would synchronise the GPU on every micro-batch.
        parts = paddle.stack([total.detach(), lm_loss.detach(), sop_loss.detach()]).astype("float32")
        self._sums[mode] = parts if mode not in self._sums else self._sums[mode] + parts
        self._counts[mode] = self._counts.get(mode, 0) + 1
        return total

    def pop_means(self, mode: str) -> Optional[List[float]]:
        """Mean [loss, lm_loss, sop_loss] over the micro-batches since the last call for `mode`, then reset."""
        sums, count = self._sums.pop(mode, None), self._counts.pop(mode, 0)
        if sums is None or count == 0:
            return None
        return [float(value) / count for value in sums.numpy()]


class PretrainingTrainer(Trainer):
    """paddlenlp Trainer with the pretraining samplers and an evaluation that continues one cached stream."""

    def _get_train_sampler(self) -> Optional[paddle.io.BatchSampler]:
        if self.train_dataset is None:
            return None
        return ResumableBatchSampler(
            len(self.train_dataset),
            self.args.per_device_train_batch_size,
            self.args.dataset_rank,
            max(1, self.args.dataset_world_size),
        )

    def _get_eval_sampler(self, eval_dataset: Any) -> Optional[paddle.io.BatchSampler]:
        if eval_dataset is None:
            return None
        # In order and finite, for the Trainer's own predict(); evaluate() reads through _eval_stream.
        return OrderedBatchSampler(
            len(eval_dataset),
            self.args.per_device_eval_batch_size,
            self.args.dataset_rank,
            max(1, self.args.dataset_world_size),
        )

    def _eval_stream(self, eval_dataset: Any, consumed_samples: int) -> Iterator:
        """An endless in-order iterator from `consumed_samples`, wrapping around so a small split never runs dry."""
        sampler = OrderedBatchSampler(
            len(eval_dataset),
            self.args.per_device_eval_batch_size,
            self.args.dataset_rank,
            max(1, self.args.dataset_world_size),
            consumed_samples,
            wrap=True,
        )
        loader = paddle.io.DataLoader(
            eval_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return iter(loader)

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Optional[List[str]] = None, metric_key_prefix: str = "eval"
    ) -> Dict[str, float]:
        """`eval_iters` batches from one cached valid iterator (re-creating it leaked memory in the original); any
        other dataset (the test split) is read from its start for `test_iters` batches."""
        if eval_dataset is None or eval_dataset is self.eval_dataset:
            if getattr(self, "_valid_iterator", None) is None:
                offset = valid_offset(
                    self.state.global_step,
                    int(self.args.eval_steps or 0),
                    self.args.eval_iters,
                    self.args.per_device_eval_batch_size,
                    max(1, self.args.dataset_world_size),
                )
                self._valid_iterator = self._eval_stream(self.eval_dataset, offset)
            iterator, iters = self._valid_iterator, self.args.eval_iters
        else:
            iterator, iters = self._eval_stream(eval_dataset, 0), self.args.test_iters
        start_time = time.time()
        output = self.evaluation_loop(
            iterator,
            description="Evaluation",
            prediction_loss_only=True,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
            max_eval_iters=iters,
        )
        total_batch_size = self.args.per_device_eval_batch_size * max(1, self.args.dataset_world_size)
        output.metrics.update(
            speed_metrics(
                metric_key_prefix,
                start_time,
                num_samples=output.num_samples,
                num_steps=math.ceil(output.num_samples / total_batch_size),
            )
        )
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, output.metrics)
        return output.metrics


class PretrainingCallback(TrainerCallback):
    """Per-step lm/sop losses and tokens/s (console + `metrics.jsonl`), and clean tokenizer files per checkpoint."""

    def __init__(self, criterion: CriterionWrapper, tokenizer: Any, max_seq_length: int, metrics: MetricsLogger):
        self.criterion = criterion
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.metrics = metrics

    def on_log(self, args, state, control, logs=None, **kwargs):
        """After each training log line: the same step's lm/sop means (averaged over ranks)."""
        if not logs or "loss" not in logs:
            return
        means = _mean_across_ranks(self.criterion.pop_means("train"), args.world_size)
        if means is None:
            return
        samples_per_second = float(logs.get("interval_samples_per_second", 0.0))
        self.metrics.log_train(
            state.global_step,
            dict(zip(LOSS_NAMES, means)),
            float(logs.get("learning_rate", 0.0)),
            float(logs.get("interval_steps_per_second", 0.0)),
            samples_per_second,
            samples_per_second * self.max_seq_length,
        )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        """After each evaluation (valid) or the final test: its lm/sop means."""
        means = _mean_across_ranks(self.criterion.pop_means("eval"), args.world_size)
        if means is None or not metrics:
            return
        split = "test" if any(key.startswith("test_") for key in metrics) else "valid"
        prefix = "test" if split == "test" else "eval"
        self.metrics.log_eval(
            split,
            state.global_step,
            dict(zip(LOSS_NAMES, means)),
            float(metrics.get(f"{prefix}_samples_per_second", 0)),
        )

    def on_save(self, args, state, control, **kwargs):
        """The Trainer got no tokenizer (its save would leak the `##` extension): write a clean one (PaddleNLP #3671)."""
        if args.should_save:
            directory = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if directory.is_dir():
                save_tokenizer_files(self.tokenizer, directory)

    def on_train_end(self, args, state, control, **kwargs):
        """Flush the metrics writers."""
        self.metrics.close()


def _mean_across_ranks(values: Optional[List[float]], world_size: int) -> Optional[List[float]]:
    if values is None or world_size <= 1:
        return values
    tensor = paddle.to_tensor(values, dtype="float64")
    paddle.distributed.all_reduce(tensor)
    return [float(value) / world_size for value in tensor.numpy()]


def find_resume_checkpoint(training_args: PreTrainingArguments) -> Optional[str]:
    """`--resume_from_checkpoint`, else the newest complete `checkpoint-<step>` (unless --overwrite_output_dir)."""
    if training_args.resume_from_checkpoint:
        path = Path(training_args.resume_from_checkpoint)
        if not (path / TRAINER_STATE_FILE).is_file():
            raise ToolkitError(
                f"--resume_from_checkpoint {path}: not a Trainer checkpoint (no {TRAINER_STATE_FILE} there)"
            )
        return str(path)
    output = Path(training_args.output_dir)
    if not training_args.do_train or training_args.overwrite_output_dir or not output.is_dir():
        return None
    complete = []
    for directory in output.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = directory.name.rsplit("-", 1)[-1]
        if step.isdigit() and (directory / TRAINER_STATE_FILE).is_file() and any(directory.glob(RNG_STATE_GLOB)):
            complete.append((int(step), directory))
    return str(max(complete)[1]) if complete else None


def global_batch_size(args: TrainingArguments) -> int:
    """Samples per optimizer step: per-device batch x accumulation x data-parallel ranks."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.dataset_world_size)


def check_checkpoint_compatible(checkpoint: str, training_args: PreTrainingArguments) -> None:
    """Refuse a resume whose global batch differs: the Trainer would silently seek to step x the new batch size."""
    path = Path(checkpoint) / TRAINING_ARGS_FILE
    if not path.is_file():
        return
    saved = paddle.load(str(path))
    if not hasattr(saved, "per_device_train_batch_size"):
        return
    check_resume_compatible(
        {"global_batch_size": global_batch_size(saved)},
        {"global_batch_size": global_batch_size(training_args)},
        checkpoint,
    )


@dataclass
class TrainerRunResult:
    """What a Trainer run did (tests assert on it; rank 0 also has it in metrics.jsonl and trainer_state.json)."""

    global_step: int
    resumed_from: Optional[str]
    log_history: List[Dict[str, Any]]
    test_metrics: Optional[Dict[str, float]] = None


def build_trainer_datasets(config: PretrainConfig, training_args: PreTrainingArguments, tokenizer: Any, runtime):
    """(train, valid, test) sized for this Trainer run; the first rank(s) build the index maps, the others wait."""
    from ernie1.data.builder import build_train_valid_test_datasets

    num_samples = requested_samples(
        config.schedule,
        training_args.per_device_eval_batch_size,
        training_args.eval_iters,
        training_args.do_eval,
        training_args.do_predict,
    )
    if not training_args.do_train:
        num_samples = (0, *num_samples[1:])
    builds_first = runtime.rank == 0 if config.data.share_folder else runtime.local_rank == 0
    if runtime.world_size > 1 and not builds_first:
        paddle.distributed.barrier()
    datasets = build_train_valid_test_datasets(
        config.data, tokenizer, num_samples, runtime.data_rank, runtime.local_rank, runtime.rank
    )
    if runtime.world_size > 1 and builds_first:
        paddle.distributed.barrier()
    train, valid, test = datasets
    if training_args.do_train and (train is None or len(train) == 0):
        raise ToolkitError(f"--input_dir {config.data.input_dir}: the train split is empty (check --split)")
    for flag, dataset, name in (("--do_eval", valid, "valid"), ("--do_predict", test, "test")):
        if getattr(training_args, flag[2:]) and dataset is None:
            raise ToolkitError(f"{flag}: the {name} split is empty (give it a share in --split {config.data.split})")
    return train, valid, test


def runtime_from_args(training_args: PreTrainingArguments):
    """The shared Runtime (ranks and device) as the Trainer's arguments describe it."""
    from ernie1.pretrain.runtime import Runtime

    world_size = max(1, training_args.world_size)
    rank = max(0, training_args.process_index)
    return Runtime(
        device=str(training_args.device),
        world_size=world_size,
        rank=rank,
        local_rank=max(0, training_args.local_rank),
        data_rank=max(0, training_args.dataset_rank),
        data_world_size=max(1, training_args.dataset_world_size),
    )


@contextlib.contextmanager
def trainer_flag_names():
    """Re-raise ToolkitErrors of the shared builders with the Trainer's flag names."""
    try:
        yield
    except ToolkitError as error:
        message = str(error)
        for pattern, flag in TRAINER_FLAG_NAMES.items():
            message = re.sub(pattern, flag, message)
        raise ToolkitError(message) from None


def run_trainer(
    model_args: ModelArguments, data_args: DataArguments, training_args: PreTrainingArguments
) -> TrainerRunResult:
    """Config -> tokenizer, model, scheduler, datasets -> PretrainingTrainer: train (resuming), evaluate, test."""
    with trainer_flag_names():
        return _run_trainer(model_args, data_args, training_args)


def _run_trainer(
    model_args: ModelArguments, data_args: DataArguments, training_args: PreTrainingArguments
) -> TrainerRunResult:
    from ernie1.data.collate import CollateForPretraining
    from ernie1.pretrain.data import load_pretraining_tokenizer
    from ernie1.pretrain.lr_schedule import build_lr_scheduler
    from ernie1.pretrain.runtime import set_seeds
    from ernie1.pretrain.training import build_model, prepare_output_dir

    config = to_pretrain_config(model_args, data_args, training_args)
    runtime = runtime_from_args(training_args)
    resume_from = find_resume_checkpoint(training_args)
    if resume_from is not None:
        check_checkpoint_compatible(resume_from, training_args)
    prepare_output_dir(config, runtime)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    metrics = MetricsLogger(config.runtime.output_dir, runtime.is_main, use_visualdl=False)
    # Auto-generated parameter and optimizer-state names restart in this scope, so a second run in the same process
    # (a resume in a test, a notebook) finds the keys its checkpoint was saved with.
    with paddle.utils.unique_name.guard():
        set_seeds(config.runtime.seed)
        model, criterion, _ = build_model(config, tokenizer)
        train, valid, test = build_trainer_datasets(config, training_args, tokenizer, runtime)
        wrapper = CriterionWrapper(criterion)
        trainer = PretrainingTrainer(
            model=model,
            criterion=wrapper,
            args=training_args,
            data_collator=CollateForPretraining(
                config.data.max_seq_length, tokenizer.pad_token_id, trainer_style=True
            ),
            train_dataset=train if training_args.do_train else None,
            eval_dataset=valid if training_args.do_eval else None,
            optimizers=(None, build_lr_scheduler(config.optim)),
            callbacks=[PretrainingCallback(wrapper, tokenizer, config.data.max_seq_length, metrics)],
        )
        if training_args.do_train:
            trainer.train(resume_from_checkpoint=resume_from)
            trainer.save_model()
            if training_args.should_save:
                save_tokenizer_files(tokenizer, Path(training_args.output_dir))
            trainer.save_state()
        elif training_args.do_eval:
            trainer.evaluate()
        test_metrics = None
        if training_args.do_predict:
            test_metrics = trainer.evaluate(eval_dataset=test, metric_key_prefix="test")
        metrics.close()
        return TrainerRunResult(trainer.state.global_step, resume_from, list(trainer.state.log_history), test_metrics)
