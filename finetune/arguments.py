"""The fine-tuning flags (three dataclasses for paddlenlp's PdArgumentParser) and their precedence.

Precedence of settings: dataclass defaults < `config.yml` (`DefaultArgs`, then the dataset's section) < the flags the
user typed. The original applied the YAML after parsing and so silently overrode the command line (REFERENCE §16, §18.14).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Set, Tuple

from paddlenlp.trainer import PdArgumentParser, TrainingArguments

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.attention import ATTENTION_IMPL_CHOICES
from ernie1.tasks.spec import TaskSettings
from finetune.task_config import CONFIG_PATH, config_values_to_argv, load_task_config

logger = logging.getLogger(__name__)
SPLIT_FILE_FLAGS = {"train": "train_file", "dev": "dev_file", "test": "test_file"}
WINDOW_FLAGS = ("doc_stride", "max_query_length", "max_answer_length", "n_best_size")
MAX_DOC_STRIDE = 128  # the original's doc_stride, kept for max_seq_length >= 256
# config.yml's learning rates (5e-5, 1e-4) suit ERNIE-base (hidden 768). Models this narrow need ~20-60x more: 48 MSRA
# sentences, 2 x 64, 60 steps, train = eval: entity F1 0.0 at 5e-5 and 1e-4, 0.27 at 1e-3, 0.96 at 3e-3.
SMALL_MODEL_HIDDEN = 256
TINY_LEARNING_RATE = 5e-4


@dataclass
class ModelArguments:
    """Which pretrained model to start from and where the exported model goes."""

    model_name_or_path: str = field(
        metadata={
            "help": "A checkpoint directory written by pretraining (model_last, model_<step>), a .pdparams file "
            "from the static->dygraph converter (with --config_name), or a paddlenlp model name (needs network)."
        }
    )
    config_name: Optional[str] = field(
        default=None, metadata={"help": "Directory with config.json/model_config.json, when not next to the weights."}
    )
    tokenizer_name: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer directory (vocab.txt) or name; default: --model_name_or_path."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Unused; kept for the original's command lines."})
    export_model_dir: Optional[str] = field(
        default=None, metadata={"help": "Where --do_export writes the inference model; default <output_dir>/export."}
    )
    attention_impl: str = field(
        default="auto",
        metadata={
            "help": "Encoder attention: paddle (paddlenlp's layer), sdpa (scaled_dot_product_attention: flash or "
            "memory-efficient kernels on GPU) or auto (the fastest on the device; the export uses paddle unless "
            "sdpa is asked for). Same parameters either way."
        },
    )

    def __post_init__(self) -> None:
        if str(self.attention_impl).strip().lower() not in ATTENTION_IMPL_CHOICES:
            choices = ", ".join(ATTENTION_IMPL_CHOICES)
            raise ToolkitError(f"--attention_impl {self.attention_impl!r}: expected one of {choices}")


@dataclass
class DataArguments:
    """Which data to fine-tune on and how to cut it into features."""

    dataset: Optional[str] = field(
        default=None,
        metadata={
            "help": "A dataset name from config.yml (e.g. chnsenticorp_v2, 'clue afqmc', msra_ner, cmrc2018): "
            "selects its hyperparameters; downloaded through paddlenlp unless local files are given."
        },
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "Local training file."})
    dev_file: Optional[str] = field(default=None, metadata={"help": "Local evaluation file."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Local file for --do_predict."})
    file_format: Optional[str] = field(
        default=None,
        metadata={"help": "Format of the local files (tsv, csv, jsonl, conll, squad); default: by suffix."},
    )
    max_seq_length: int = field(
        default=128,
        metadata={"help": "Tokens per feature (at most the model's max_position_embeddings); longer texts are cut."},
    )
    doc_stride: Optional[int] = field(
        default=None,
        metadata={
            "help": "QA: tokens between the starts of consecutive context windows; default min(128, "
            "max_seq_length // 2), so that windows overlap and an answer cut by one window lies whole in the next."
        },
    )
    n_best_size: int = field(default=20, metadata={"help": "QA: candidate start/end positions per feature."})
    max_query_length: int = field(default=64, metadata={"help": "QA: tokens kept of the question."})
    max_answer_length: int = field(default=30, metadata={"help": "QA: longest answer span in tokens."})
    do_lower_case: bool = field(default=False, metadata={"help": "Unused (the tokenizer's own setting applies)."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Unused; kept for the original's command lines."})
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Unused; kept for compatibility."}
    )
    null_score_diff_threshold: float = field(default=0.0, metadata={"help": "QA: threshold for predicting no answer."})

    def __post_init__(self) -> None:
        if self.doc_stride is None:
            self.doc_stride = default_doc_stride(self.max_seq_length)

    def task_settings(self) -> TaskSettings:
        """The settings the task layer reads (the fields of the same names; labels are added once known)."""
        return TaskSettings.from_dict(asdict(self))


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
    """paddlenlp TrainingArguments plus the original config.yml's `minimum_eval_times` and the toolkit's `packing`."""

    minimum_eval_times: int = field(
        default=-1, metadata={"help": "If > 0, shorten eval_steps so that training evaluates at least this often."}
    )
    packing: bool = field(
        default=False,
        metadata={
            "help": "seq_cls and ner: pack the examples of each batch into as few rows of max_seq_length tokens as "
            "they fit (block-diagonal attention, positions restarting per example); same examples per step, same "
            "results, fewer padding tokens. Training, evaluation and prediction; the export stays unpacked. "
            "Not for qa."
        },
    )


def default_doc_stride(max_seq_length: int) -> int:
    """min(128, max_seq_length // 2): with a short window a stride of 128 would leave no overlap between windows."""
    return max(1, min(MAX_DOC_STRIDE, max_seq_length // 2))


def warn_if_learning_rate_is_tiny(learning_rate: float, hidden_size: Optional[int]) -> None:
    """One warning line when a base-model learning rate meets a small model (it then barely moves in a few epochs)."""
    if hidden_size is not None and hidden_size <= SMALL_MODEL_HIDDEN and learning_rate < TINY_LEARNING_RATE:
        logger.warning(
            "--learning_rate %g is tuned for ERNIE-base (hidden 768); this model has hidden %d: "
            "small models fine-tune at --learning_rate 1e-3 to 3e-3",
            learning_rate,
            hidden_size,
        )


class _FinetuneArgumentParser(PdArgumentParser):
    """PdArgumentParser whose usage errors become one-line ToolkitErrors instead of SystemExit."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise ToolkitError(f"{message} (see --help)")


def build_argument_parser() -> PdArgumentParser:
    """The fine-tuning parser over (ModelArguments, DataArguments, FinetuneTrainingArguments)."""
    return _FinetuneArgumentParser((ModelArguments, DataArguments, FinetuneTrainingArguments))


_UNSET = object()


def typed_dests(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Set[str]:
    """Names of the arguments the user actually typed in `argv` (abbreviations, `--x=v` and `--no_x` included)."""
    # argparse fills a default only for attributes missing from the namespace, so a pre-filled sentinel survives
    # exactly for the flags that were not typed.
    namespace = argparse.Namespace(**{action.dest: _UNSET for action in parser._actions if action.dest != "help"})
    parsed, _ = parser.parse_known_args(list(argv), namespace=namespace)
    return {dest for dest, value in vars(parsed).items() if value is not _UNSET}


def parse_finetune_args(
    task: str, argv: Optional[Sequence[str]] = None, config_path: Path = CONFIG_PATH
) -> Tuple[ModelArguments, DataArguments, FinetuneTrainingArguments]:
    """Parse fine-tuning flags for `task` (seq_cls, ner, qa) with precedence defaults < config.yml < typed flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_argument_parser()
    typed = typed_dests(parser, argv)
    peeked, _ = parser.parse_known_args(argv)
    values = load_task_config(task, peeked.dataset, config_path)
    if peeked.load_best_model_at_end and "save_steps" not in typed:
        # Best-model tracking needs save_steps to be a multiple of eval_steps; the config sets only eval_steps.
        values["save_steps"] = peeked.eval_steps if "eval_steps" in typed else values.get("eval_steps")
    # Config values for typed flags are dropped (rather than relying on argparse's last-one-wins) so that list-valued
    # flags cannot merge.
    full_argv = config_values_to_argv(values, parser, typed) + argv
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(full_argv, look_for_args_file=False)
    except ValueError as error:
        raise ToolkitError(" ".join(str(error).split())) from error
    training_args.typed_flags = sorted(typed)  # for logging which settings came from the user
    _check_data_args(data_args, training_args)
    return model_args, data_args, training_args


def _check_data_args(data_args: DataArguments, training_args: TrainingArguments) -> None:
    needs = [("--do_train", training_args.do_train, "train"), ("--do_eval", training_args.do_eval, "dev")]
    needs.append(("--do_predict", training_args.do_predict, "test"))
    for flag, wanted, split in needs:
        file_attr = SPLIT_FILE_FLAGS[split]
        if wanted and not data_args.dataset and not getattr(data_args, file_attr):
            raise ToolkitError(f"{flag} needs data: pass --{file_attr} <file> or --dataset <name>")
    for file_attr in SPLIT_FILE_FLAGS.values():
        path = getattr(data_args, file_attr)
        if path and not Path(path).is_file():
            raise ToolkitError(f"--{file_attr} {path}: no such file")
    if data_args.max_seq_length < 8:
        raise ToolkitError(f"--max_seq_length {data_args.max_seq_length} is too small; use at least 8")
    for name in WINDOW_FLAGS:
        if getattr(data_args, name) < 1:
            raise ToolkitError(f"--{name} {getattr(data_args, name)}: must be at least 1")
