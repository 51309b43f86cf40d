"""Fine-tune an ERNIE checkpoint for extractive reading comprehension (cmrc2018 or local SQuAD v1 JSON files).

    cd finetune && python run_qa.py --do_train --do_eval --do_predict --do_export \
        --model_name_or_path ../output/ernie-1.0-dp8-gb512/model_last --dataset cmrc2018 \
        --train_file ../../shared/data/cmrc2018/cmrc2018_trial.json --dev_file ../../shared/data/cmrc2018/cmrc2018_dev.json \
        --test_file ../../shared/data/cmrc2018/cmrc2018_dev.json --output_dir ./tmp/cmrc2018 \
        --eval_steps 200 --save_steps 200 --metric_for_best_model f1 --load_best_model_at_end --save_total_limit 1
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python run_qa.py` from finetune/: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import logging  # noqa: E402
from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: E402

from ernie1.common.errors import ToolkitError  # noqa: E402
from ernie1.tasks.qa import (  # noqa: E402
    LOCAL_FILES_HINT,
    QaExample,
    QaFeature,
    build_features,
    examples_from_records,
    extract_answers,
    qa_metrics,
    read_squad_file,
    write_predictions,
)
from finetune.common import (  # noqa: E402
    FinetuneTrainer,
    build_trainer,
    cli_entry,
    configure_logging,
    evaluate_and_save,
    export_model,
    load_model_for_task,
    load_named_split,
    load_tokenizer_for_finetune,
    parse_finetune_args,
    predict_outputs,
    resolve_last_checkpoint,
    train_and_save,
)

logger = logging.getLogger("run_qa")
# paddlenlp's cmrc2018 names its splits train/dev/trial; --do_predict uses the trial split.
NAMED_SPLITS = {"cmrc2018": {"train": "train", "dev": "dev", "test": "trial"}}


class QuestionAnsweringTrainer(FinetuneTrainer):
    """A Trainer whose `evaluate` turns window logits into answers and scores them (CMRC EM/F1)."""

    def __init__(self, *args: Any, qa_eval: Optional["QaEvalSet"] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.qa_eval = qa_eval

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Optional[List[str]] = None, metric_key_prefix: str = "eval"
    ) -> Dict[str, float]:
        """Predict start/end logits for every window, extract one answer per question, log EM/F1."""
        qa_eval = self.qa_eval
        if qa_eval is None:
            raise ToolkitError("evaluation needs questions with answers: pass --do_eval with --dev_file or --dataset")
        dataloader = self.get_eval_dataloader(eval_dataset if eval_dataset is not None else self.eval_dataset)
        output = self.evaluation_loop(
            dataloader, description="Evaluation", prediction_loss_only=False, ignore_keys=ignore_keys
        )
        answers = qa_eval.answers(output.predictions)
        scores = qa_metrics([answer["text"] for answer in answers], [example.answers for example in qa_eval.examples])
        metrics = dict(output.metrics)
        metrics.update({f"{metric_key_prefix}_{key}": value for key, value in scores.items()})
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class QaEvalSet:
    """Examples and their window features, with the settings that turn logits back into answers."""

    def __init__(self, examples: List[QaExample], features: List[QaFeature], n_best_size: int, max_answer_length: int):
        self.examples, self.features = examples, features
        self.n_best_size, self.max_answer_length = n_best_size, max_answer_length

    def inputs(self) -> List[Dict[str, Any]]:
        """Collator inputs (no answer positions: evaluation scores the extracted answers, not a loss)."""
        return [feature.model_inputs(with_labels=False) for feature in self.features]

    def answers(self, predictions: Tuple[Any, Any]) -> List[Dict[str, Any]]:
        start_logits, end_logits = predictions[0], predictions[1]
        contexts = [example.context for example in self.examples]
        return extract_answers(
            contexts, self.features, start_logits, end_logits, self.n_best_size, self.max_answer_length
        )


def load_split(data_args: Any, split: str) -> Tuple[List[QaExample], str]:
    """(examples, where) of train/dev/test from the local SQuAD file when given, else the named dataset."""
    file_attr = {"train": "train_file", "dev": "dev_file", "test": "test_file"}[split]
    path = getattr(data_args, file_attr)
    if path:
        return read_squad_file(path, f"--{file_attr}"), f"--{file_attr} {path}"
    name = NAMED_SPLITS.get(data_args.dataset, {}).get(split, split)
    loaded = load_named_split(data_args.dataset, name, "qa", LOCAL_FILES_HINT)
    return examples_from_records(dict(record) for record in loaded), f"--dataset {data_args.dataset}"


def training_features(examples: List[QaExample], where: str, tokenizer: Any, data_args: Any) -> List[Dict[str, Any]]:
    """Labelled windows of the examples that have an answer located in their context."""
    usable = [example for example in examples if example.first_aligned_answer() is not None]
    if not usable:
        raise ToolkitError(f"{where}: no question has an answer found in its context; training needs answers")
    if len(usable) < len(examples):
        logger.warning(
            "%s: skipped %d questions whose answers are not in the context", where, len(examples) - len(usable)
        )
    features = build_features(
        usable, tokenizer, data_args.max_seq_length, data_args.doc_stride, data_args.max_query_length, with_labels=True
    )
    return [feature.model_inputs(with_labels=True) for feature in features]


def check_qa_args(data_args: Any) -> None:
    """Windowing settings must be positive."""
    for name in ("doc_stride", "max_query_length", "max_answer_length", "n_best_size"):
        if getattr(data_args, name) < 1:
            raise ToolkitError(f"--{name} {getattr(data_args, name)}: must be at least 1")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse -> load data, tokenizer, model -> train / eval / predict / export as requested."""
    model_args, data_args, training_args = parse_finetune_args("qa", argv)
    check_qa_args(data_args)
    configure_logging()
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.trainer import set_seed
    from paddlenlp.transformers import ErnieForQuestionAnswering

    set_seed(training_args.seed)
    resume_from = resolve_last_checkpoint(training_args)

    train = load_split(data_args, "train") if training_args.do_train else None
    dev = load_split(data_args, "dev") if training_args.do_eval else None
    test = load_split(data_args, "test") if training_args.do_predict else None
    if dev is not None and not any(example.answers for example in dev[0]):
        raise ToolkitError(f"{dev[1]}: no answers; evaluation needs 'answers' in the SQuAD file")

    tokenizer = load_tokenizer_for_finetune(model_args.tokenizer_name or model_args.model_name_or_path)
    model = load_model_for_task(
        ErnieForQuestionAnswering, model_args.model_name_or_path, config_name=model_args.config_name
    )

    def eval_set(split: Tuple[List[QaExample], str]) -> QaEvalSet:
        features = build_features(
            split[0], tokenizer, data_args.max_seq_length, data_args.doc_stride, data_args.max_query_length
        )
        return QaEvalSet(split[0], features, data_args.n_best_size, data_args.max_answer_length)

    train_features = training_features(*train, tokenizer, data_args) if train else None
    dev_set = eval_set(dev) if dev else None
    trainer = build_trainer(
        model,
        training_args,
        train_features,
        dev_set.inputs() if dev_set else None,
        tokenizer,
        DataCollatorWithPadding(tokenizer),
        trainer_cls=QuestionAnsweringTrainer,
    )
    trainer.qa_eval = dev_set
    if training_args.do_train:
        train_and_save(trainer, resume_from)
    if training_args.do_eval:
        evaluate_and_save(trainer, dev_set.inputs())
    if training_args.do_predict:
        predict(trainer, eval_set(test), Path(training_args.output_dir))
    if training_args.do_export:
        extra = {
            "max_seq_length": data_args.max_seq_length,
            "doc_stride": data_args.doc_stride,
            "max_query_length": data_args.max_query_length,
            "n_best_size": data_args.n_best_size,
            "max_answer_length": data_args.max_answer_length,
            "dataset": data_args.dataset,
        }
        export_model(
            trainer.model,
            tokenizer,
            training_args.output_dir,
            "qa",
            extra=extra,
            export_dir=model_args.export_model_dir,
        )
    return 0


def predict(trainer: Any, test_set: QaEvalSet, out: Path) -> None:
    """Write `test_predictions.json` ({id: answer}); with reference answers also `test_results.json` (EM/F1)."""
    answers = test_set.answers(predict_outputs(trainer, test_set.inputs()))
    path = write_predictions(out / "test_predictions.json", test_set.examples, answers)
    logger.info("wrote %d answers to %s", len(answers), path)
    if any(example.answers for example in test_set.examples):
        scores = qa_metrics([a["text"] for a in answers], [example.answers for example in test_set.examples])
        metrics = {f"test_{key}": value for key, value in scores.items()}
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)


if __name__ == "__main__":
    cli_entry(main)
