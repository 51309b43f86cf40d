"""Sequence classification: examples -> features, label lists, named-dataset records, metrics, prediction files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.tasks.labels import check_known_labels, sorted_labels
from ernie1.tasks.spec import EvalSet, Outputs, Split, TaskSettings, TaskSpec
from ernie1.tasks.tables import Example, read_examples, text_fields

# Display names for datasets whose labels are bare ids (ChnSentiCorp: 0 = negative, 1 = positive).
LABEL_DISPLAY_NAMES: Dict[str, Dict[str, str]] = {
    "chnsenticorp": {"0": "negative", "1": "positive"},
    "chnsenticorp_v2": {"0": "negative", "1": "positive"},
}


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


def is_labelled(examples: Sequence[Example]) -> bool:
    """Whether every example has a label (a test file may have none)."""
    return bool(examples) and all(example.get("label") not in (None, "") for example in examples)


def encode_text(tokenizer: Any, text: str, text_b: Optional[str], max_seq_length: int) -> Dict[str, List[int]]:
    """`[CLS] text [SEP] (text_b [SEP])`, truncated to max_seq_length: the model inputs of one example."""
    encoded = tokenizer(
        text=text, text_pair=text_b or None, max_length=max_seq_length, truncation=True, return_attention_mask=False
    )
    return {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"]}


def encode_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    max_seq_length: int,
    label_to_id: Optional[Dict[str, int]],
    where: str,
) -> List[Dict[str, Any]]:
    """Tokenise (truncating to max_seq_length) and map labels to ids; labels are kept only if every example has one."""
    labelled = label_to_id is not None and is_labelled(examples)
    if labelled:
        check_known_labels(((e.get("line", "?"), e["label"]) for e in examples), list(label_to_id), where)
    features = []
    for example in examples:
        feature: Dict[str, Any] = encode_text(tokenizer, example["text"], example.get("text_b"), max_seq_length)
        if labelled:
            feature["labels"] = label_to_id[example["label"]]
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
        example = text_fields(record, line, with_label=False)
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


def write_predictions(
    path: Path, examples: Sequence[Example], predicted_ids: Sequence[int], names: Sequence[str]
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


class SeqClsEvalSet(EvalSet):
    """One feature per example; predictions are class ids."""

    def __init__(self, split: Split, tokenizer: Any, settings: TaskSettings):
        self.examples = split.examples
        self.names = settings.names
        label_list = settings.label_list
        label_to_id = {label: index for index, label in enumerate(label_list)} if label_list else None
        self.features = encode_examples(self.examples, tokenizer, settings.max_seq_length, label_to_id, split.where)

    def inputs(self, with_labels: bool) -> List[Dict[str, Any]]:
        return [f if with_labels else {k: v for k, v in f.items() if k != "labels"} for f in self.features]

    def decode(self, outputs: Outputs) -> List[int]:
        return [int(np.argmax(row)) for row in outputs[0]]

    @property
    def has_gold(self) -> bool:
        return bool(self.features) and "labels" in self.features[0]

    def score(self, predictions: List[int]) -> Dict[str, float]:
        gold = np.array([feature["labels"] for feature in self.features])
        return classification_metrics(np.array(predictions), gold)

    def write(self, path: Path, predictions: List[int]) -> Path:
        return write_predictions(path, self.examples, predictions, self.names)

    def label_names(self, predictions: List[int]) -> List[str]:
        """The display name of each predicted class."""
        return [self.names[index] if index < len(self.names) else str(index) for index in predictions]


class SeqClsTask(TaskSpec):
    """Sequence classification (chnsenticorp_v2, CLUE tasks, xnli_cn, local TSV/CSV/JSONL)."""

    name = "seq_cls"
    model_class = "ErnieForSequenceClassification"
    prediction_file = "test_predictions.tsv"
    export_keys = ("max_seq_length", "label_list", "label_names", "dataset")
    # config.yml keeps the original's section names; paddlenlp registers CLUE WSC as `cluewsc2020`.
    dataset_aliases = {"clue wsc": "clue cluewsc2020"}
    packs = True
    prior_head = "classifier"

    def read_file(self, path: str, flag: str, file_format: Optional[str]) -> List[Example]:
        return read_examples(path, file_format, flag=flag)

    def examples_from_records(
        self, dataset: str, records: List[Dict[str, Any]], label_names: Optional[List[str]]
    ) -> List[Example]:
        return [named_record_to_example(dataset, record, label_names, i + 1) for i, record in enumerate(records)]

    def label_list(self, train: Split) -> List[str]:
        """A named dataset's own label list, else the sorted training labels."""
        return train.label_names or build_label_list(train.examples, train.where)

    def check_split(self, split: Split, label_list: Optional[List[str]], needs_gold: bool) -> None:
        if needs_gold:
            require_labels(split.examples, split.where)
        if label_list is not None and is_labelled(split.examples):
            check_known_labels(((e.get("line", "?"), e["label"]) for e in split.examples), label_list, split.where)

    def display_names(self, label_list: Optional[List[str]], dataset: Optional[str]) -> Optional[List[str]]:
        return display_names(label_list, dataset) if label_list else None

    def train_inputs(self, split: Split, tokenizer: Any, settings: TaskSettings) -> List[Dict[str, Any]]:
        return self.eval_set(split, tokenizer, settings).inputs(with_labels=True)

    def eval_set(self, split: Split, tokenizer: Any, settings: TaskSettings) -> SeqClsEvalSet:
        return SeqClsEvalSet(split, tokenizer, settings)

    def inference_example(self, item: str, index: int) -> Example:
        return {"text": item, "line": index + 1}

    def criterion(self) -> Any:
        import paddle

        return paddle.nn.loss.CrossEntropyLoss()

    def collator(self, tokenizer: Any) -> Any:
        from paddlenlp.data import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def packed_model_class(self) -> Any:
        from ernie1.tasks.packing import PackedErnieForSequenceClassification

        return PackedErnieForSequenceClassification

    def packing_collator(self, tokenizer: Any, max_seq_length: int) -> Any:
        from ernie1.tasks.packing import FIRST_TOKEN, PackingCollator

        return PackingCollator(max_seq_length, tokenizer.pad_token_id, readout=FIRST_TOKEN)


TASK = SeqClsTask()
