"""Extractive QA: SQuAD-format reader, doc_stride windows with char offsets, answer extraction, CMRC EM/F1.

Pure Python/numpy apart from the tokenizer passed in; `QaTask` is what fine-tuning and deployment drive (the same
windows and answer extraction for a Trainer and for an exported model).
"""

from __future__ import annotations

import json
import logging
import string
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.tasks.files import read_task_file
from ernie1.tasks.spec import EvalSet, Outputs, Split, TaskSettings, TaskSpec
from ernie1.text.cjk import is_tokenizer_cjk_char

logger = logging.getLogger(__name__)
Offset = Optional[Tuple[int, int]]


@dataclass
class QaExample:
    """One question over one context; `answer_starts[i]` is -1 where answer i is not found in the context."""

    id: str
    question: str
    context: str
    answers: List[str] = field(default_factory=list)
    answer_starts: List[int] = field(default_factory=list)
    title: str = ""

    def first_aligned_answer(self) -> Optional[Tuple[int, str]]:
        """(start, text) of the first answer located in the context, the one used for training."""
        for text, start in zip(self.answers, self.answer_starts):
            if start >= 0 and text:
                return start, text
        return None


@dataclass
class QaFeature:
    """One window of one example: model inputs plus each token's char offsets in the context (None outside it)."""

    example_index: int
    input_ids: List[int]
    token_type_ids: List[int]
    offsets: List[Offset]
    start_position: int = 0
    end_position: int = 0

    def model_inputs(self, with_labels: bool) -> Dict[str, Any]:
        """The dict the Trainer's collator pads (answer positions only for training)."""
        inputs: Dict[str, Any] = {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids}
        if with_labels:
            inputs["start_positions"] = self.start_position
            inputs["end_positions"] = self.end_position
        return inputs


# --------------------------------------------------------------------------------------------------------------------
# Reading


def relocate_answer(context: str, text: str, start: int) -> int:
    """`start` if the answer sits there, else the nearest `str.find` hit, else -1 (CMRC has off-by-one-or-two starts)."""
    if not text:
        return -1
    if 0 <= start and context[start : start + len(text)] == text:
        return start
    hits = []
    position = context.find(text)
    while position >= 0:
        hits.append(position)
        position = context.find(text, position + 1)
    if not hits:
        return -1
    return min(hits, key=lambda hit: abs(hit - max(start, 0)))


def read_squad_file(path: str, flag: str) -> List[QaExample]:
    """SQuAD v1 JSON (`data` -> `paragraphs` -> `qas` -> `answers`) into examples; answers may be absent (test)."""
    return read_task_file(path, flag, _parse_squad_text, "questions")


def _parse_squad_text(text: str) -> List[QaExample]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolkitError(f"not valid JSON ({error.msg} at line {error.lineno}); expected SQuAD v1 JSON") from error
    return examples_from_squad(document)


def examples_from_squad(document: Any) -> List[QaExample]:
    """Examples from a parsed SQuAD document; a one-line error names the first malformed entry."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise ToolkitError("expected SQuAD JSON: an object with a 'data' list of articles")
    examples: List[QaExample] = []
    for article_index, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise ToolkitError(f"data[{article_index}]: no 'paragraphs' list")
        for paragraph in paragraphs:
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not isinstance(paragraph.get("qas"), list):
                raise ToolkitError(f"data[{article_index}]: a paragraph without 'context' or 'qas'")
            for qa in paragraph["qas"]:
                examples.append(_example_from_qa(qa, context, article.get("title", ""), len(examples)))
    return examples


def _example_from_qa(qa: Any, context: str, title: str, index: int) -> QaExample:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
        raise ToolkitError(f"question #{index + 1}: no 'question' field")
    qa_id = str(qa.get("id", index))
    texts, starts = [], []
    for answer in qa.get("answers") or []:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise ToolkitError(f"question {qa_id}: an answer without 'text'")
        text = answer["text"].strip()
        texts.append(text)
        starts.append(relocate_answer(context, text, _answer_start(answer.get("answer_start"), qa_id)))
    return QaExample(qa_id, qa["question"], context, texts, starts, title)


def _answer_start(value: Any, qa_id: str) -> int:
    """`answer_start` as an int (-1 when absent); an integer-valued string or float is accepted."""
    if value is None:
        return -1
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ToolkitError(f"question {qa_id}: answer_start {str(value)[:40]!r} is not an integer character offset")


def examples_from_records(records: Iterable[Dict[str, Any]]) -> List[QaExample]:
    """paddlenlp named-dataset records (`id`, `context`, `question`, `answers`, `answer_starts`) -> examples."""
    examples = []
    for index, record in enumerate(records):
        context = record["context"]
        texts = [str(text).strip() for text in record.get("answers") or []]
        given = list(record.get("answer_starts") or []) + [-1] * len(texts)
        starts = [relocate_answer(context, text, int(start)) for text, start in zip(texts, given)]
        examples.append(
            QaExample(
                str(record.get("id", index)), record["question"], context, texts, starts, record.get("title", "")
            )
        )
    return examples


# --------------------------------------------------------------------------------------------------------------------
# Tokenisation with offsets and windows


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def split_units(text: str) -> List[Tuple[int, int]]:
    """Char spans the tokenizer treats as separate words: each CJK char or punctuation mark, and runs of the rest."""
    units: List[Tuple[int, int]] = []
    start = None
    for index, char in enumerate(text):
        if char.isspace() or is_tokenizer_cjk_char(char) or _is_punctuation(char):
            if start is not None:
                units.append((start, index))
                start = None
            if not char.isspace():
                units.append((index, index + 1))
        elif start is None:
            start = index
    if start is not None:
        units.append((start, len(text)))
    return units


class OffsetTokenizer:
    """Word pieces of a text with each piece's char span, from the tokenizer applied unit by unit (memoised)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.cache: Dict[str, Tuple[List[int], List[str]]] = {}

    def _pieces(self, unit: str) -> Tuple[List[int], List[str]]:
        cached = self.cache.get(unit)
        if cached is None:
            tokens = self.tokenizer.tokenize(unit)
            cached = (self.tokenizer.convert_tokens_to_ids(tokens), tokens)
            self.cache[unit] = cached
        return cached

    def __call__(self, text: str) -> Tuple[List[int], List[Tuple[int, int]]]:
        """(ids, offsets) where offsets[i] = (start, end) chars of piece i in `text`."""
        ids: List[int] = []
        offsets: List[Tuple[int, int]] = []
        for start, end in split_units(text):
            unit_ids, tokens = self._pieces(text[start:end])
            lengths = [len(token[2:] if token.startswith("##") else token) for token in tokens]
            # Pieces tile the unit when their lengths add up; otherwise ([UNK], accents stripped) each spans it all.
            exact = sum(lengths) == end - start
            position = start
            for token_id, length in zip(unit_ids, lengths):
                ids.append(token_id)
                if exact:
                    offsets.append((position, position + length))
                    position += length
                else:
                    offsets.append((start, end))
        return ids, offsets


def window_starts(num_tokens: int, window: int, doc_stride: int) -> List[int]:
    """Start token of each context window: every `doc_stride` tokens (at most `window`) until the end is covered."""
    step = max(1, min(doc_stride, window))
    starts = [0]
    while starts[-1] + window < num_tokens:
        starts.append(starts[-1] + step)
    return starts


def build_features(
    examples: Sequence[QaExample],
    tokenizer: Any,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    with_labels: bool = False,
) -> List[QaFeature]:
    """`[CLS] question [SEP] context window [SEP]` features; with labels, the answer's token span or (0, 0) at CLS.

    Examples without an aligned answer get (0, 0) in every window when labelled; the caller drops them for training.
    """
    offset_tokenizer = OffsetTokenizer(tokenizer)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    features: List[QaFeature] = []
    for example_index, example in enumerate(examples):
        question_ids = offset_tokenizer(example.question)[0][:max_query_length]
        window = max_seq_length - len(question_ids) - 3
        if window < 1:
            raise ToolkitError(
                f"--max_seq_length {max_seq_length} leaves no room for the context after a {len(question_ids)}-token "
                "question; raise it or lower --max_query_length"
            )
        context_ids, context_offsets = offset_tokenizer(example.context)
        answer = example.first_aligned_answer() if with_labels else None
        prefix = [cls_id] + question_ids + [sep_id]
        for start in window_starts(len(context_ids), window, doc_stride):
            piece_ids = context_ids[start : start + window]
            piece_offsets = context_offsets[start : start + window]
            feature = QaFeature(
                example_index,
                prefix + piece_ids + [sep_id],
                [0] * len(prefix) + [1] * (len(piece_ids) + 1),
                [None] * len(prefix) + list(piece_offsets) + [None],
            )
            if answer is not None:
                span = answer_token_span(piece_offsets, answer[0], answer[0] + len(answer[1]))
                if span is not None:
                    feature.start_position, feature.end_position = span[0] + len(prefix), span[1] + len(prefix)
            features.append(feature)
    return features


def answer_token_span(offsets: Sequence[Tuple[int, int]], start_char: int, end_char: int) -> Optional[Tuple[int, int]]:
    """(first, last) token index covering chars [start_char, end_char) within this window, or None if not inside."""
    if not offsets or start_char < offsets[0][0] or end_char > offsets[-1][1]:
        return None
    first = next((i for i, (_, end) in enumerate(offsets) if end > start_char), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end_char), None)
    if first is None or last is None or last < first:
        return None
    return first, last


# --------------------------------------------------------------------------------------------------------------------
# Answer extraction


def extract_answers(
    contexts: Sequence[str],
    features: Sequence[QaFeature],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
) -> List[Dict[str, Any]]:
    """Best span per example over all its windows: `{"text", "start", "score"}`, in the order of `contexts`.

    `start_logits`/`end_logits` are `[num_features, S]` (rows may be padded past each feature's length); a span must
    lie in the context, end at or after its start, and span at most `max_answer_length` tokens. An example with no
    valid span gets the empty answer.
    """
    best: List[Dict[str, Any]] = [{"text": "", "start": -1, "score": float("-inf")} for _ in contexts]
    for row, feature in enumerate(features):
        length = len(feature.offsets)
        starts = np.asarray(start_logits[row][:length], dtype="float64")
        ends = np.asarray(end_logits[row][:length], dtype="float64")
        start_candidates = np.argsort(-starts, kind="stable")[:n_best_size]
        end_candidates = np.argsort(-ends, kind="stable")[:n_best_size]
        for start_index in start_candidates:
            start_offset = feature.offsets[start_index]
            if start_offset is None:
                continue
            for end_index in end_candidates:
                end_offset = feature.offsets[end_index]
                if end_offset is None or end_index < start_index or end_index - start_index + 1 > max_answer_length:
                    continue
                score = float(starts[start_index] + ends[end_index])
                current = best[feature.example_index]
                if score > current["score"]:
                    context = contexts[feature.example_index]
                    text = context[start_offset[0] : end_offset[1]]
                    best[feature.example_index] = {"text": text, "start": start_offset[0], "score": score}
    for answer in best:
        if answer["score"] == float("-inf"):
            answer["score"] = None
    return best


# --------------------------------------------------------------------------------------------------------------------
# CMRC 2018 metrics


def normalize_answer(text: str) -> str:
    """Lower-cased NFKC text without whitespace or punctuation (CMRC's normalisation, applied per character)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(char for char in text if not char.isspace() and not _is_punctuation(char))


def longest_common_substring(a: str, b: str) -> int:
    """Length of the longest common contiguous substring (CMRC's F1 counts this overlap, not a bag of chars)."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    best = 0
    for char_a in a:
        current = [0] * (len(b) + 1)
        for j, char_b in enumerate(b, start=1):
            if char_a == char_b:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def char_f1(prediction: str, reference: str) -> float:
    """Character-level F1 of one prediction against one reference (both normalised), in [0, 1]."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    overlap = longest_common_substring(pred, ref)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised texts are equal."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def qa_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> Dict[str, float]:
    """CMRC-style EM and F1 in percent, each the max over an example's references; examples without any are skipped."""
    em_total = f1_total = 0.0
    count = 0
    for prediction, answers in zip(predictions, references):
        answers = [answer for answer in answers if normalize_answer(answer)]
        if not answers:
            continue
        em_total += max(exact_match(prediction, answer) for answer in answers)
        f1_total += max(char_f1(prediction, answer) for answer in answers)
        count += 1
    return {
        "exact_match": 100.0 * em_total / count if count else 0.0,
        "f1": 100.0 * f1_total / count if count else 0.0,
        "num_scored": float(count),
    }


def write_predictions(path: Path, examples: Sequence[QaExample], answers: Sequence[Dict[str, Any]]) -> Path:
    """`{id: answer text}` JSON, the CMRC/SQuAD prediction format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {example.id: answer["text"] for example, answer in zip(examples, answers)}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


class QaEvalSet(EvalSet):
    """Window features of the questions; predictions are answer dicts `{text, start, score}` (best span per question)."""

    def __init__(self, split: Split, tokenizer: Any, settings: TaskSettings):
        self.examples = split.examples
        self.settings = settings
        # Answer positions are labelled when there are answers, so that evaluation also reports a loss.
        self.features = build_features(
            self.examples,
            tokenizer,
            settings.max_seq_length,
            settings.doc_stride,
            settings.max_query_length,
            with_labels=self.has_gold,
        )

    def inputs(self, with_labels: bool) -> List[Dict[str, Any]]:
        return [feature.model_inputs(with_labels=with_labels and self.has_gold) for feature in self.features]

    def decode(self, outputs: Outputs) -> List[Dict[str, Any]]:
        start_logits, end_logits = outputs[0], outputs[1]
        contexts = [example.context for example in self.examples]
        return extract_answers(
            contexts,
            self.features,
            start_logits,
            end_logits,
            self.settings.n_best_size,
            self.settings.max_answer_length,
        )

    @property
    def has_gold(self) -> bool:
        return any(example.answers for example in self.examples)

    def score(self, predictions: List[Dict[str, Any]]) -> Dict[str, float]:
        return qa_metrics([answer["text"] for answer in predictions], [example.answers for example in self.examples])

    def write(self, path: Path, predictions: List[Dict[str, Any]]) -> Path:
        return write_predictions(path, self.examples, predictions)


class QaTask(TaskSpec):
    """Extractive reading comprehension (cmrc2018 or local SQuAD v1 JSON)."""

    name = "qa"
    model_class = "ErnieForQuestionAnswering"
    uses_label_list = False
    prediction_file = "test_predictions.json"
    export_keys = ("max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length", "dataset")
    # paddlenlp's cmrc2018 names its splits train/dev/trial; --do_predict uses the trial split.
    named_splits = {"cmrc2018": {"test": "trial"}}
    # paddlenlp 2.8.1 looks for "QusetionAnswering" in the model's class name to choose these, so it never does.
    label_keys = ("start_positions", "end_positions")

    def read_file(self, path: str, flag: str, file_format: Optional[str]) -> List[QaExample]:
        return read_squad_file(path, flag)

    def examples_from_records(
        self, dataset: str, records: List[Dict[str, Any]], label_names: Optional[List[str]]
    ) -> List[QaExample]:
        return examples_from_records(records)

    def check_split(self, split: Split, label_list: Optional[List[str]], needs_gold: bool) -> None:
        if needs_gold and not any(example.answers for example in split.examples):
            raise ToolkitError(f"{split.where}: no answers; evaluation needs 'answers' in the SQuAD file")

    def train_inputs(self, split: Split, tokenizer: Any, settings: TaskSettings) -> List[Dict[str, Any]]:
        """Labelled windows of the questions that have an answer located in their context."""
        usable = [example for example in split.examples if example.first_aligned_answer() is not None]
        if not usable:
            raise ToolkitError(
                f"{split.where}: no question has an answer found in its context; training needs answers"
            )
        if len(usable) < len(split.examples):
            skipped = len(split.examples) - len(usable)
            logger.warning("%s: skipped %d questions whose answers are not in the context", split.where, skipped)
        return self.eval_set(Split(usable, split.where), tokenizer, settings).inputs(with_labels=True)

    def eval_set(self, split: Split, tokenizer: Any, settings: TaskSettings) -> QaEvalSet:
        return QaEvalSet(split, tokenizer, settings)

    def inference_example(self, item: Dict[str, str], index: int) -> QaExample:
        return QaExample(str(index), item["question"], item["context"])

    def collator(self, tokenizer: Any) -> Any:
        from paddlenlp.data import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)


TASK = QaTask()
