"""Fine-tune an ERNIE checkpoint for sequence classification (chnsenticorp_v2, CLUE tasks, xnli_cn, local files).

    cd finetune && python run_seq_cls.py --do_train --do_eval --do_predict --do_export \
        --model_name_or_path ../output/ernie-1.0-dp8-gb512/model_last --dataset chnsenticorp_v2 \
        --train_file data/train.tsv --dev_file data/dev.tsv --test_file data/test.tsv --output_dir ./tmp/chnsenticorp_v2
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python run_seq_cls.py` from finetune/: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json  # noqa: E402
import logging  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from ernie1.common.errors import ToolkitError  # noqa: E402
from ernie1.tasks.seq_cls import (  # noqa: E402
    build_label_list,
    compute_metrics,
    display_names,
    encode_examples,
    load_split,
    require_labels,
    write_predictions,
)
from finetune.common import (  # noqa: E402
    build_trainer,
    cli_entry,
    configure_logging,
    evaluate_and_save,
    export_model,
    load_model_for_task,
    load_tokenizer_for_finetune,
    parse_finetune_args,
    resolve_last_checkpoint,
    save_json,
    train_and_save,
)

logger = logging.getLogger("run_seq_cls")
LABEL_LIST_FILE = "label_list.json"


def resolve_label_list(train: Optional[tuple], model_path: str) -> List[str]:
    """Labels from the training data (or the named dataset), else from the fine-tuned model's label_list.json."""
    if train is not None:
        examples, where, named_labels = train
        return named_labels or build_label_list(examples, where)
    saved = Path(model_path) / LABEL_LIST_FILE
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    raise ToolkitError(
        f"--model_name_or_path {model_path}: no {LABEL_LIST_FILE}; without --do_train pass a model fine-tuned by "
        "run_seq_cls.py (its --output_dir)"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse -> load data, tokenizer, model -> train / eval / predict / export as requested."""
    model_args, data_args, training_args = parse_finetune_args("seq_cls", argv)
    configure_logging()
    import paddle
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.trainer import set_seed
    from paddlenlp.transformers import ErnieForSequenceClassification

    set_seed(training_args.seed)
    resume_from = resolve_last_checkpoint(training_args)

    train = load_split(data_args, "train") if training_args.do_train else None
    dev = load_split(data_args, "dev") if training_args.do_eval else None
    test = load_split(data_args, "test") if training_args.do_predict else None
    label_list = resolve_label_list(train, model_args.model_name_or_path)
    label_to_id = {label: index for index, label in enumerate(label_list)}
    names = display_names(label_list, data_args.dataset)

    tokenizer = load_tokenizer_for_finetune(model_args.tokenizer_name or model_args.model_name_or_path)
    model = load_model_for_task(
        ErnieForSequenceClassification,
        model_args.model_name_or_path,
        config_name=model_args.config_name,
        num_classes=len(label_list),
    )

    if dev is not None:
        require_labels(dev[0], dev[1])
    train_features, dev_features, test_features = (
        encode_examples(split[0], tokenizer, data_args.max_seq_length, label_to_id, split[1]) if split else None
        for split in (train, dev, test)
    )

    trainer = build_trainer(
        model,
        training_args,
        train_features,
        dev_features,
        tokenizer,
        DataCollatorWithPadding(tokenizer),
        criterion=paddle.nn.loss.CrossEntropyLoss(),
        compute_metrics=compute_metrics,
    )
    if training_args.do_train:
        train_and_save(trainer, resume_from)
        save_json(Path(training_args.output_dir) / LABEL_LIST_FILE, label_list)
    if training_args.do_eval:
        evaluate_and_save(trainer, dev_features)
    if training_args.do_predict:
        output = trainer.predict(test_features)
        predicted = np.argmax(output.predictions, axis=-1)
        path = write_predictions(Path(training_args.output_dir) / "test_predictions.tsv", test[0], predicted, names)
        if output.metrics and "labels" in test_features[0]:
            trainer.log_metrics("test", output.metrics)
            trainer.save_metrics("test", output.metrics)
        logger.info("wrote %d predictions to %s", len(predicted), path)
    if training_args.do_export:
        extra = {
            "max_seq_length": data_args.max_seq_length,
            "label_list": label_list,
            "label_names": names,
            "dataset": data_args.dataset,
        }
        export_model(
            trainer.model,
            tokenizer,
            training_args.output_dir,
            "seq_cls",
            extra=extra,
            export_dir=model_args.export_model_dir,
        )
    return 0


if __name__ == "__main__":
    cli_entry(main)
