"""Fine-tune an ERNIE checkpoint for named-entity recognition (peoples_daily_ner, msra_ner, local CoNLL/BIO files).

    cd finetune && python run_ner.py --do_train --do_eval --do_predict --do_export \
        --model_name_or_path ../output/ernie-1.0-dp8-gb512/model_last --dataset msra_ner \
        --train_file data/msra_ner/train.txt --dev_file data/msra_ner/dev.txt --test_file data/msra_ner/test.txt \
        --output_dir ./tmp/msra_ner --eval_steps 200 --save_steps 200 --metric_for_best_model f1 \
        --load_best_model_at_end --save_total_limit 1
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python run_ner.py` from finetune/: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json  # noqa: E402
import logging  # noqa: E402
from typing import Any, List, Optional, Sequence, Tuple  # noqa: E402

from ernie1.common.errors import ToolkitError  # noqa: E402
from ernie1.tasks.ner import (  # noqa: E402
    LOCAL_FILES_HINT,
    NerExample,
    build_label_list,
    encode_examples,
    entity_metrics,
    examples_from_records,
    make_compute_metrics,
    predicted_word_tags,
    read_ner_file,
    write_predictions,
)
from finetune.common import (  # noqa: E402
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
    save_json,
    train_and_save,
)

logger = logging.getLogger("run_ner")
LABEL_LIST_FILE = "label_list.json"
# paddlenlp's msra_ner has no dev split; it is evaluated on test, as the original did.
NAMED_SPLITS = {"msra_ner": {"train": "train", "dev": "test", "test": "test"}}


def load_split(data_args: Any, split: str) -> Tuple[List[NerExample], str]:
    """(examples, where) of train/dev/test from the local file when given, else from the named dataset."""
    file_attr = {"train": "train_file", "dev": "dev_file", "test": "test_file"}[split]
    path = getattr(data_args, file_attr)
    if path:
        return read_ner_file(path, f"--{file_attr}"), f"--{file_attr} {path}"
    name = NAMED_SPLITS.get(data_args.dataset, {}).get(split, split)
    loaded = load_named_split(data_args.dataset, name, "ner", LOCAL_FILES_HINT)
    label_names = [str(label) for label in getattr(loaded, "label_list", None) or []]
    return examples_from_records((dict(record) for record in loaded), label_names), f"--dataset {data_args.dataset}"


def resolve_label_list(train: Optional[Tuple[List[NerExample], str]], model_path: str) -> List[str]:
    """Labels from the training data, else the label_list.json a previous run_ner.py saved with the model."""
    if train is not None:
        return build_label_list(*train)
    saved = Path(model_path) / LABEL_LIST_FILE
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    raise ToolkitError(
        f"--model_name_or_path {model_path}: no {LABEL_LIST_FILE}; without --do_train pass a model fine-tuned by "
        "run_ner.py (its --output_dir)"
    )


def require_tags(examples: Sequence[NerExample], where: str) -> None:
    """Evaluation needs gold tags on every sentence."""
    if examples and examples[0].tags is None:
        raise ToolkitError(f"{where}: no tag column; evaluation needs 'char tag' lines")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse -> load data, tokenizer, model -> train / eval / predict / export as requested."""
    model_args, data_args, training_args = parse_finetune_args("ner", argv)
    configure_logging()
    from paddlenlp.data import DataCollatorForTokenClassification
    from paddlenlp.trainer import set_seed
    from paddlenlp.transformers import ErnieForTokenClassification

    set_seed(training_args.seed)
    resume_from = resolve_last_checkpoint(training_args)

    train = load_split(data_args, "train") if training_args.do_train else None
    dev = load_split(data_args, "dev") if training_args.do_eval else None
    test = load_split(data_args, "test") if training_args.do_predict else None
    if dev is not None:
        require_tags(*dev)
    label_list = resolve_label_list(train, model_args.model_name_or_path)
    label_to_id = {label: index for index, label in enumerate(label_list)}

    tokenizer = load_tokenizer_for_finetune(model_args.tokenizer_name or model_args.model_name_or_path)
    model = load_model_for_task(
        ErnieForTokenClassification,
        model_args.model_name_or_path,
        config_name=model_args.config_name,
        num_classes=len(label_list),
    )

    def encode(split, with_labels: bool):
        return encode_examples(split[0], tokenizer, data_args.max_seq_length, label_to_id if with_labels else None)

    train_features = encode(train, True) if train else None
    dev_features = encode(dev, True) if dev else None
    test_features = encode(test, test is not None and test[0][0].tags is not None) if test else None

    trainer = build_trainer(
        model,
        training_args,
        [feature.model_inputs() for feature in train_features] if train_features else None,
        [feature.model_inputs() for feature in dev_features] if dev_features else None,
        tokenizer,
        DataCollatorForTokenClassification(tokenizer),
        compute_metrics=make_compute_metrics(dev[0], dev_features, label_list) if dev else None,
    )
    if training_args.do_train:
        train_and_save(trainer, resume_from)
        save_json(Path(training_args.output_dir) / LABEL_LIST_FILE, label_list)
    if training_args.do_eval:
        evaluate_and_save(trainer, [feature.model_inputs() for feature in dev_features])
    if training_args.do_predict:
        predict(trainer, test, test_features, label_list, Path(training_args.output_dir))
    if training_args.do_export:
        extra = {"max_seq_length": data_args.max_seq_length, "label_list": label_list, "dataset": data_args.dataset}
        export_model(
            trainer.model,
            tokenizer,
            training_args.output_dir,
            "ner",
            extra=extra,
            export_dir=model_args.export_model_dir,
        )
    return 0


def predict(
    trainer: Any, test: Tuple[List[NerExample], str], features: list, label_list: List[str], out: Path
) -> None:
    """Write `test_predictions.jsonl`; with gold tags also `test_results.json` (entity P/R/F1)."""
    examples = test[0]
    # Labels are left out so that prediction never needs them; metrics are computed here on whole sentences.
    outputs = predict_outputs(
        trainer, [{k: v for k, v in f.model_inputs().items() if k != "labels"} for f in features]
    )
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    predicted = predicted_word_tags(logits, features, label_list)
    path = write_predictions(out / "test_predictions.jsonl", examples, predicted)
    logger.info("wrote %d predictions to %s", len(predicted), path)
    if examples[0].tags is not None:
        metrics = {
            f"test_{key}": value for key, value in entity_metrics([e.tags for e in examples], predicted).items()
        }
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)


if __name__ == "__main__":
    cli_entry(main)
