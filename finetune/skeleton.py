"""The one fine-tuning flow that `run_seq_cls.py`, `run_ner.py` and `run_qa.py` share; the task supplies the rest.

parse (defaults < config.yml < typed flags) -> check max_seq_length against the model -> load the splits -> label list
-> tokenizer and model -> Trainer -> train / evaluate / predict / export, as requested.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import LABEL_LIST_FILE
from ernie1.pretrain.attention import resolve_attention_impl, set_attention_impl
from ernie1.tasks import get_task
from ernie1.tasks.heads import init_head_bias_to_prior, label_counts
from ernie1.tasks.outputs import save_label_list, saved_label_list
from ernie1.tasks.spec import Split, TaskSpec, check_max_seq_length
from finetune.arguments import parse_finetune_args, warn_if_learning_rate_is_tiny
from finetune.data import load_split_if
from finetune.export import export_model
from finetune.loading import load_model_config, load_model_for_task, load_tokenizer_for_finetune
from finetune.task_config import CONFIG_PATH
from finetune.trainer import (
    build_trainer,
    evaluate_and_save,
    predict_and_save,
    resolve_last_checkpoint,
    train_and_save,
)

logger = logging.getLogger(__name__)


def configure_logging() -> None:
    """Plain INFO logging for the scripts (called from main, never at import)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def resolve_label_list(task: TaskSpec, train: Optional[Split], model_path: str) -> Optional[List[str]]:
    """Labels from the training data (or the named dataset), else the label_list.json saved with a fine-tuned model."""
    if not task.uses_label_list:
        return None
    if train is not None:
        return task.label_list(train)
    saved = saved_label_list(Path(model_path))
    if saved is None:
        raise ToolkitError(
            f"--model_name_or_path {model_path}: no {LABEL_LIST_FILE}; without --do_train pass a model fine-tuned by "
            f"run_{task.name}.py (its --output_dir)"
        )
    return saved


def check_packing(task: TaskSpec, packing: bool) -> None:
    """`--packing true` only for tasks whose examples can share a row."""
    if packing and not task.packs:
        raise ToolkitError(
            f"--packing: run_{task.name}.py does not pack (run_seq_cls.py and run_ner.py do); "
            "drop --packing or pass --packing false"
        )


def start_head_at_prior(
    task: TaskSpec, model: Any, train_inputs: Optional[List[Dict[str, Any]]], label_list: Optional[List[str]]
) -> None:
    """A newly initialised classifier head starts at the log prior of the training labels; a loaded one is kept."""
    if not task.prior_head or not train_inputs or not label_list:
        return
    counts = label_counts(train_inputs, len(label_list))
    if init_head_bias_to_prior(getattr(model, task.prior_head), counts):
        logger.info("new %s head: bias set to the log prior of %d training labels", task.prior_head, counts.sum())


def run_finetune(task_name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Fine-tune, evaluate, predict and export one task as the flags ask; returns the exit code."""
    task = get_task(task_name)
    model_args, data_args, training_args = parse_finetune_args(task.name, argv)
    configure_logging()
    import paddlenlp.transformers
    from paddlenlp.trainer import set_seed

    check_packing(task, training_args.packing)
    model_cls = (
        task.packed_model_class() if training_args.packing else getattr(paddlenlp.transformers, task.model_class)
    )
    model_path = model_args.model_name_or_path
    model_config = load_model_config(model_cls, model_path, model_args.config_name)
    config_source = model_args.config_name or model_path
    positions = getattr(model_config, "max_position_embeddings", None)
    typed = "max_seq_length" in training_args.typed_flags
    setting = "--max_seq_length" if typed else f"{CONFIG_PATH.name}'s max_seq_length"
    check_max_seq_length(data_args.max_seq_length, positions, setting, config_source)
    if training_args.do_train:
        warn_if_learning_rate_is_tiny(training_args.learning_rate, getattr(model_config, "hidden_size", None))
    set_seed(training_args.seed)
    resume_from = resolve_last_checkpoint(training_args)

    train = load_split_if(training_args.do_train, task, data_args, "train")
    dev = load_split_if(training_args.do_eval, task, data_args, "dev")
    test = load_split_if(training_args.do_predict, task, data_args, "test")
    label_list = resolve_label_list(task, train, model_path)
    for split, needs_gold in ((dev, True), (test, False)):
        if split is not None:
            task.check_split(split, label_list, needs_gold)
    names = task.display_names(label_list, data_args.dataset)
    settings = replace(data_args.task_settings(), label_list=label_list, label_names=names)

    tokenizer = load_tokenizer_for_finetune(model_args.tokenizer_name or model_path)
    head = {"num_classes": len(label_list)} if label_list else {}
    model = load_model_for_task(model_cls, model_path, config_name=model_args.config_name, **head)
    set_attention_impl(model, resolve_attention_impl(model_args.attention_impl, training_args.device))
    packing = training_args.packing
    collator = task.packing_collator(tokenizer, settings.max_seq_length) if packing else task.collator(tokenizer)
    train_inputs = task.train_inputs(train, tokenizer, settings) if train else None
    start_head_at_prior(task, model, train_inputs, label_list)
    trainer = build_trainer(
        model,
        training_args,
        train_inputs,
        task.eval_set(dev, tokenizer, settings) if dev else None,
        tokenizer,
        collator,
        criterion=task.criterion(),
        label_keys=task.label_keys,
    )
    output_dir = Path(training_args.output_dir)
    if training_args.do_train:
        train_and_save(trainer, resume_from)
        if label_list:
            save_label_list(output_dir, label_list)
    if training_args.do_eval:
        evaluate_and_save(trainer)
    if training_args.do_predict:
        path = output_dir / task.prediction_file
        predictions = predict_and_save(trainer, task.eval_set(test, tokenizer, settings), path)
        logger.info("wrote %d predictions to %s", len(predictions), path)
    if training_args.do_export:
        export_model(
            trainer.model,
            tokenizer,
            str(output_dir),
            task.name,
            task.export_settings(settings),
            model_args.export_model_dir,
            attention_impl=resolve_attention_impl(model_args.attention_impl, training_args.device, for_export=True),
        )
    return 0
