"""What the three fine-tuning scripts share: arguments and config.yml, model/tokenizer loading, local files, export.

Precedence of settings: dataclass defaults < `config.yml` (`DefaultArgs`, then the dataset's section) < the flags the
user typed. The original applied the YAML after parsing and so silently overrode the command line (REFERENCE §16, §18.14).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import yaml
from paddlenlp.trainer import PdArgumentParser, Trainer, TrainingArguments

from deploy.predictor import EXPORT_CONFIG_NAME
from ernie1.common.errors import ToolkitError, run_cli
from ernie1.text.tokenizer import drop_wordpiece_added_tokens, save_tokenizer_files

logger = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).with_name("config.yml")
TASK_SECTIONS = {"seq_cls": "SequenceClassification", "ner": "TokenClassification", "qa": "QuestionAnswering"}
# config.yml keys that are not flags: `batch_size` sets both per-device batch sizes; `metric` only names what the task
# reports (the scripts always compute their task's metric).
YAML_KEY_ALIASES = {"batch_size": ("per_device_train_batch_size", "per_device_eval_batch_size"), "metric": ()}
WEIGHT_FILES = ("model_state.pdparams", "model.safetensors")
CONFIG_FILES = ("config.json", "model_config.json")


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
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per feature; longer texts are truncated."})
    doc_stride: int = field(default=128, metadata={"help": "QA: stride between context windows."})
    n_best_size: int = field(default=20, metadata={"help": "QA: candidate start/end positions per feature."})
    max_query_length: int = field(default=64, metadata={"help": "QA: tokens kept of the question."})
    max_answer_length: int = field(default=30, metadata={"help": "QA: longest answer span in tokens."})
    do_lower_case: bool = field(default=False, metadata={"help": "Unused (the tokenizer's own setting applies)."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Unused; kept for the original's command lines."})
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Unused; kept for compatibility."}
    )
    null_score_diff_threshold: float = field(default=0.0, metadata={"help": "QA: threshold for predicting no answer."})


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
    """paddlenlp TrainingArguments plus the original config.yml's `minimum_eval_times`."""

    minimum_eval_times: int = field(
        default=-1, metadata={"help": "If > 0, shorten eval_steps so that training evaluates at least this often."}
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


def load_task_config(task: str, dataset: Optional[str], config_path: Path = CONFIG_PATH) -> Dict[str, Any]:
    """`DefaultArgs` of the task's config.yml section, updated by the dataset's own entry when it has one."""
    if task not in TASK_SECTIONS:
        raise ValueError(f"unknown fine-tuning task {task!r}; expected one of {sorted(TASK_SECTIONS)}")
    try:
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ToolkitError(f"cannot read {config_path}: {error}") from error
    section = config.get(TASK_SECTIONS[task]) or {}
    values = dict(section.get("DefaultArgs") or {})
    if dataset and dataset in section and dataset != "DefaultArgs":
        values.update(section[dataset] or {})
    return values


def known_datasets(task: str, config_path: Path = CONFIG_PATH) -> List[str]:
    """Dataset names with a section in config.yml for `task`."""
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    return [name for name in (config.get(TASK_SECTIONS[task]) or {}) if name != "DefaultArgs"]


def config_values_to_argv(values: Dict[str, Any], parser: argparse.ArgumentParser, typed: Set[str]) -> List[str]:
    """Turn config.yml values into command-line tokens, skipping whatever the user typed."""
    dests = {action.dest: action for action in parser._actions}
    argv: List[str] = []
    for key, value in values.items():
        targets = YAML_KEY_ALIASES.get(key, (key,))
        for dest in targets:
            if dest not in dests:
                raise ToolkitError(f"{CONFIG_PATH}: unknown key {key!r}; use a flag name of the fine-tuning scripts")
            if dest in typed or value is None:
                continue
            values_list = value if isinstance(value, (list, tuple)) else [value]
            argv.append(f"--{dest}")
            argv.extend(str(item) for item in values_list)
    return argv


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
    _check_data_sources(data_args, training_args)
    return model_args, data_args, training_args


def _check_data_sources(data_args: DataArguments, training_args: TrainingArguments) -> None:
    needs = [("--do_train", training_args.do_train, "train_file"), ("--do_eval", training_args.do_eval, "dev_file")]
    needs.append(("--do_predict", training_args.do_predict, "test_file"))
    for flag, wanted, file_attr in needs:
        if wanted and not data_args.dataset and not getattr(data_args, file_attr):
            raise ToolkitError(f"{flag} needs data: pass --{file_attr} <file> or --dataset <name>")
    for file_attr in ("train_file", "dev_file", "test_file"):
        path = getattr(data_args, file_attr)
        if path and not Path(path).is_file():
            raise ToolkitError(f"--{file_attr} {path}: no such file")
    if data_args.max_seq_length < 8:
        raise ToolkitError(f"--max_seq_length {data_args.max_seq_length} is too small; use at least 8")


def apply_minimum_eval_times(training_args: FinetuneTrainingArguments, num_training_steps: int) -> None:
    """Lower eval_steps (and save_steps with it) so that at least `minimum_eval_times` evaluations happen."""
    wanted = training_args.minimum_eval_times
    typed = set(getattr(training_args, "typed_flags", ()))
    if wanted is None or wanted <= 0 or "eval_steps" in typed or num_training_steps <= 0:
        return
    steps = max(1, num_training_steps // wanted)
    if training_args.eval_steps is None or steps < training_args.eval_steps:
        training_args.eval_steps = steps
        if "save_steps" not in typed and training_args.load_best_model_at_end:
            training_args.save_steps = steps


def resolve_last_checkpoint(training_args: TrainingArguments) -> Optional[str]:
    """The checkpoint-N to resume from; an output_dir holding a model but no checkpoint is an error (unless overwriting)."""
    from paddlenlp.trainer import get_last_checkpoint

    output_dir = Path(training_args.output_dir)
    if not training_args.do_train or training_args.overwrite_output_dir or not output_dir.is_dir():
        return None
    last = get_last_checkpoint(str(output_dir))
    if last is None and any(
        p.name.startswith("checkpoint-") or p.name == "model_state.pdparams" for p in output_dir.iterdir()
    ):
        raise ToolkitError(
            f"--output_dir {output_dir} already holds a model but no complete checkpoint-N to resume; "
            "pass --overwrite_output_dir or another --output_dir"
        )
    return last


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer and model


def error_summary(error: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception message on one line (paddlenlp's download errors run to paragraphs)."""
    text = " ".join(str(error).split()) or type(error).__name__
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _offline_error(flag: str, name: str, error: BaseException) -> ToolkitError:
    reason = error_summary(error)
    return ToolkitError(
        f"{flag} {name}: cannot load it from the paddlenlp hub ({reason}); offline, pass a local checkpoint directory "
        "such as the pretraining output's model_last (model_state.pdparams, model_config.json, vocab.txt)"
    )


def load_tokenizer_for_finetune(path: str, flag: str = "--model_name_or_path") -> Any:
    """Load the tokenizer from a checkpoint dir (tokenizer files or just vocab.txt) or a paddlenlp name, no `##` adds."""
    from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer

    local = Path(path)
    if local.is_file() and local.suffix == ".txt":
        tokenizer = ErnieTokenizer(str(local))
    elif local.is_dir():
        if not (local / "vocab.txt").is_file():
            raise ToolkitError(
                f"{flag} {path}: no vocab.txt in this directory; pass --tokenizer_name <dir with vocab.txt>"
            )
        if (local / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(local))
        else:
            tokenizer = ErnieTokenizer(str(local / "vocab.txt"))
    elif local.exists():
        raise ToolkitError(f"{flag} {path}: expected a checkpoint directory or vocab.txt; pass --tokenizer_name <dir>")
    elif os.sep in path or path.startswith("."):
        raise ToolkitError(f"{flag} {path}: no such directory")
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise _offline_error(flag, path, error) from error
    dropped = drop_wordpiece_added_tokens(tokenizer)
    if dropped:
        logger.warning("dropped %d added '##' tokens from the tokenizer in %s", dropped, path)
    return tokenizer


def _load_state_file(weights: Path) -> Dict[str, Any]:
    import paddle

    try:
        return paddle.load(str(weights))
    except Exception as error:  # paddle raises several types for a corrupt or foreign pickle
        raise ToolkitError(f"{weights}: cannot read the weights ({type(error).__name__}: {error})") from error


def load_model_for_task(model_cls: Any, path: str, config_name: Optional[str] = None, **kwargs: Any) -> Any:
    """`model_cls.from_pretrained` over a checkpoint dir, a converted .pdparams file, or a paddlenlp name."""
    local = Path(path)
    if local.is_dir():
        if not any((local / name).is_file() for name in WEIGHT_FILES):
            raise ToolkitError(f"--model_name_or_path {path}: no model_state.pdparams in this directory")
        if config_name is None and not any((local / name).is_file() for name in CONFIG_FILES):
            raise ToolkitError(
                f"--model_name_or_path {path}: no config.json or model_config.json; pass --config_name <dir with it>"
            )
        if config_name is None:
            return model_cls.from_pretrained(str(local), **kwargs)
    if local.is_file() and local.suffix == ".pdparams":
        return _load_from_state_file(model_cls, local, config_name or str(local.parent), **kwargs)
    if local.is_dir():
        return _load_from_state_file(model_cls, _weights_in(local), config_name, **kwargs)
    if local.exists() or os.sep in path or path.startswith("."):
        raise ToolkitError(f"--model_name_or_path {path}: no such checkpoint directory or .pdparams file")
    try:
        return model_cls.from_pretrained(path, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise _offline_error("--model_name_or_path", path, error) from error


def _weights_in(directory: Path) -> Path:
    return next(directory / name for name in WEIGHT_FILES if (directory / name).is_file())


def _load_from_state_file(model_cls: Any, weights: Path, config_source: str, **kwargs: Any) -> Any:
    """Build from a config directory or name, then load a bare state dict (the converter's output)."""
    try:
        config = model_cls.config_class.from_pretrained(config_source, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise ToolkitError(
            f"--config_name {config_source}: no model config found there; pass a directory with model_config.json"
        ) from error
    model = model_cls(config)
    state = _load_state_file(weights)
    prefix = f"{model.base_model_prefix}."
    own = model.state_dict()
    # A pretraining state dict names the encoder `ernie.*`; a bare encoder's dict has no prefix. Map both.
    renamed = {}
    for key, value in state.items():
        if key in own:
            renamed[key] = value
        elif prefix + key in own:
            renamed[prefix + key] = value
    if not any(key.startswith(prefix) for key in renamed):
        raise ToolkitError(f"{weights}: none of its parameters match an ERNIE model; is it a model state dict?")
    model.set_state_dict(renamed)
    return model


# --------------------------------------------------------------------------------------------------------------------
# Local files


Example = Dict[str, Any]
READERS: Dict[str, Callable[[Path], List[Example]]] = {}
FORMAT_BY_SUFFIX: Dict[str, str] = {}

TEXT_COLUMNS = ("text", "text_a", "sentence", "sentence1", "premise", "query")
TEXT_B_COLUMNS = ("text_b", "sentence2", "hypothesis")
LABEL_COLUMNS = ("label", "labels")
IGNORED_COLUMNS = ("qid", "id", "idx", "index")


def register_reader(name: str, suffixes: Iterable[str] = ()) -> Callable:
    """Decorator: register `reader(path) -> list of example dicts` under a --file_format name (and file suffixes)."""

    def decorator(reader: Callable[[Path], List[Example]]) -> Callable[[Path], List[Example]]:
        READERS[name] = reader
        for suffix in suffixes:
            FORMAT_BY_SUFFIX[suffix] = name
        return reader

    return decorator


def read_examples(path: str, fmt: Optional[str] = None, flag: Optional[str] = None) -> List[Example]:
    """Read a local data file into example dicts (with `line`), by format name or file suffix; errors name the file."""
    where = f"{flag} {path}" if flag else str(path)
    file_path = Path(path)
    if not file_path.is_file():
        raise ToolkitError(f"{where}: no such file")
    name = fmt or FORMAT_BY_SUFFIX.get(file_path.suffix.lower())
    if name is None:
        raise ToolkitError(f"{where}: cannot tell the format from the suffix; pass --file_format {'|'.join(READERS)}")
    if name not in READERS:
        raise ToolkitError(f"--file_format {name}: unknown; expected one of {', '.join(sorted(READERS))}")
    if file_path.stat().st_size == 0:
        raise ToolkitError(f"{where}: the file is empty")
    try:
        examples = READERS[name](file_path)
    except UnicodeDecodeError as error:
        raise ToolkitError(f"{where}: not UTF-8 text ({error.reason})") from error
    except ToolkitError as error:
        raise ToolkitError(f"{where}: {error}") from error
    if not examples:
        raise ToolkitError(f"{where}: no examples in the file")
    return examples


def _row_to_example(cells: List[str], header: Optional[Dict[str, int]], line: int) -> Example:
    if header is None:
        # Headerless rows by position: text | text, label | text, text_b, label.
        if len(cells) == 1:
            return {"text": cells[0], "line": line}
        if len(cells) == 2:
            return {"text": cells[0], "label": cells[1], "line": line}
        if len(cells) == 3:
            return {"text": cells[0], "text_b": cells[1], "label": cells[2], "line": line}
        raise ToolkitError(f"line {line}: {len(cells)} columns; expected text[, text_b], label or a header row")
    if len(cells) != len(header["__width__"]):
        raise ToolkitError(f"line {line}: {len(cells)} columns, but the header has {len(header['__width__'])}")
    example: Example = {"line": line}
    for key in ("text", "text_b", "label"):
        if key in header:
            example[key] = cells[header[key]]
    return example


def _parse_header(cells: List[str]) -> Optional[Dict[str, Any]]:
    lowered = [cell.strip().lower() for cell in cells]
    known = set(TEXT_COLUMNS + TEXT_B_COLUMNS + LABEL_COLUMNS + IGNORED_COLUMNS)
    if not lowered or not all(cell in known for cell in lowered):
        return None
    header: Dict[str, Any] = {"__width__": lowered}
    for key, names in (("text", TEXT_COLUMNS), ("text_b", TEXT_B_COLUMNS), ("label", LABEL_COLUMNS)):
        for index, cell in enumerate(lowered):
            if cell in names and key not in header:
                header[key] = index
    if "text" not in header:
        raise ToolkitError(f"the header {cells} has no text column; name one of {', '.join(TEXT_COLUMNS)}")
    return header


def _read_delimited(path: Path, delimiter: str) -> List[Example]:
    examples: List[Example] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(
            handle, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        )
        header = None
        first_row = True
        for cells in rows:
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if first_row:
                first_row = False
                header = _parse_header(cells)
                if header is not None:
                    continue
            examples.append(_row_to_example(cells, header, rows.line_num))
    return examples


@register_reader("tsv", suffixes=(".tsv",))
def read_tsv(path: Path) -> List[Example]:
    """Tab-separated rows: text[, text_b], label, optionally under a header (label, text_a, qid, …)."""
    return _read_delimited(path, "\t")


@register_reader("csv", suffixes=(".csv",))
def read_csv(path: Path) -> List[Example]:
    """Comma-separated rows (RFC 4180 quoting), same columns as TSV."""
    return _read_delimited(path, ",")


@register_reader("jsonl", suffixes=(".jsonl",))
def read_jsonl(path: Path) -> List[Example]:
    """One JSON object per line with a text key (text, text_a, sentence, …), optional text_b and label."""
    examples: List[Example] = []
    with open(path, encoding="utf-8-sig") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as error:
                raise ToolkitError(f"line {line}: not valid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise ToolkitError(f"line {line}: expected a JSON object")
            examples.append(normalize_record(record, line))
    return examples


def normalize_record(record: Dict[str, Any], line: int) -> Example:
    """Map a dict with any of the known column names onto `text`, `text_b`, `label` (+ `line`)."""
    example: Example = {"line": line}
    for key, names in (("text", TEXT_COLUMNS), ("text_b", TEXT_B_COLUMNS), ("label", LABEL_COLUMNS)):
        for name in names:
            if record.get(name) is not None:
                example[key] = str(record[name])
                break
    if "text" not in example:
        raise ToolkitError(f"line {line}: no text field; use one of {', '.join(TEXT_COLUMNS)}")
    return example


# --------------------------------------------------------------------------------------------------------------------
# Named datasets


def load_named_split(dataset: str, split: str, task: str, local_hint: str) -> Any:
    """`paddlenlp.datasets.load_dataset(*dataset.split(), splits=split)`; offline, a one-line error with `local_hint`."""
    from paddlenlp.datasets import load_dataset

    try:
        return load_dataset(*dataset.split(), splits=split)
    except (OSError, RuntimeError, ValueError, KeyError, ImportError) as error:
        reason = error_summary(error)
        raise ToolkitError(
            f"--dataset {dataset}: cannot load split {split!r} through paddlenlp ({reason}); "
            f"pass local files instead: {local_hint}"
        ) from error


# --------------------------------------------------------------------------------------------------------------------
# Training helpers


class FinetuneTrainer(Trainer):
    """paddlenlp's Trainer, with `--save_total_limit` honoured in single-process runs too.

    paddlenlp 2.8.1 rotates checkpoints only when `local_rank == 0`, which a run without the launcher never is, so
    every checkpoint was kept.
    """

    def _save_checkpoint(self, model: Any, metrics: Optional[Dict[str, float]] = None) -> None:
        super()._save_checkpoint(model, metrics=metrics)
        if self.args.local_rank == -1 and self.args.save_total_limit:
            self._rotate_checkpoints(use_mtime=True, output_dir=self.args.output_dir)


def build_trainer(
    model: Any,
    training_args: TrainingArguments,
    train_dataset: Any,
    eval_dataset: Any,
    tokenizer: Any,
    data_collator: Callable,
    criterion: Any = None,
    compute_metrics: Optional[Callable] = None,
    trainer_cls: Optional[type] = None,
) -> Any:
    """A paddlenlp Trainer over in-memory feature lists (eval_steps shortened by `minimum_eval_times` if set)."""
    if train_dataset is not None and training_args.do_train:
        batches_per_epoch = max(1, len(train_dataset) // max(1, training_args.train_batch_size))
        steps_per_epoch = max(1, batches_per_epoch // max(1, training_args.gradient_accumulation_steps))
        total = (
            training_args.max_steps
            if training_args.max_steps > 0
            else int(steps_per_epoch * training_args.num_train_epochs)
        )
        apply_minimum_eval_times(training_args, total)
    return (trainer_cls or FinetuneTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset,
        tokenizer=tokenizer,
        data_collator=data_collator,
        criterion=criterion,
        compute_metrics=compute_metrics,
    )


def train_and_save(trainer: Any, resume_from: Optional[str]) -> Dict[str, float]:
    """Train (resuming from `resume_from` when given), save the final model and the train metrics."""
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    return dict(result.metrics)


def predict_outputs(trainer: Any, features: List[Dict[str, Any]]) -> Any:
    """Model outputs for `features`, in order.

    `Trainer.predict` drops the outputs when the Trainer has no compute_metrics (no --do_eval): run the loop directly.
    """
    dataloader = trainer.get_test_dataloader(features)
    return trainer.evaluation_loop(dataloader, description="Prediction", prediction_loss_only=False).predictions


def evaluate_and_save(trainer: Any, eval_dataset: Any) -> Dict[str, float]:
    """Evaluate on `eval_dataset` and save `eval_results.json`."""
    metrics = trainer.evaluate(eval_dataset=eval_dataset)
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return dict(metrics)


def save_json(path: Path, payload: Any) -> None:
    """Write JSON (UTF-8, indented) through a temporary file so a crash leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------------
# Export


def export_model(
    model: Any,
    tokenizer: Any,
    output_dir: str,
    task: str,
    input_spec_names: Sequence[str] = ("input_ids", "token_type_ids"),
    extra: Optional[Dict[str, Any]] = None,
    export_dir: Optional[str] = None,
) -> Path:
    """`jit.save` the model into `<output_dir>/export` (or `export_dir`) with tokenizer files and export_config.json.

    `extra` is merged into export_config.json; it must hold `max_seq_length`, and by convention `label_list`
    (class id -> label) for seq_cls/ner and the QA windowing settings for qa.
    """
    import paddle

    extra = dict(extra or {})
    if "max_seq_length" not in extra:
        raise ValueError("export_model: extra must contain max_seq_length")
    target = Path(export_dir) if export_dir else Path(output_dir) / "export"
    target.mkdir(parents=True, exist_ok=True)
    input_spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=name) for name in input_spec_names]
    was_training = model.training
    model.eval()
    # jit.save traces a copy of forward; the dygraph model stays usable afterwards.
    paddle.jit.save(model, str(target / "inference"), input_spec=input_spec)
    if was_training:
        model.train()
    save_tokenizer_files(tokenizer, target)
    save_json(target / EXPORT_CONFIG_NAME, {"task": task, "input_names": list(input_spec_names), **extra})
    logger.info("exported the inference model to %s", target)
    return target


# --------------------------------------------------------------------------------------------------------------------
# Entry points


def configure_logging() -> None:
    """Plain INFO logging for the scripts (called from main, never at import)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def cli_entry(main: Callable[[Optional[Sequence[str]]], int]) -> None:
    """`sys.exit(run_cli(main))`: the `if __name__ == "__main__"` line of every fine-tuning and deploy script."""
    sys.exit(run_cli(main))
