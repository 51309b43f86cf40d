"""The knowledge probe: ERNIE 1.0's cloze test made quantitative (issue 9).

Each entity of a sentence becomes one query: all its characters are replaced by `[MASK]` (the other entities stay
visible) and one forward predicts every masked position at once, argmax over the vocabulary (the paper's setting).
`entity_exact_match` is the share of entities whose characters all come back right, `char_accuracy` the share of
masked characters that do, `entities` the number of entities scored.

Sentences and spans come from a CoNLL/BIO file (gold spans of every entity type, read as run_ner.py reads them) or
from a text / JSON-lines file (sentences split at 。！？ and line breaks, entities found by the toolkit's own
detection, `ernie1.text.knowledge`). With the checkpoint's tokenizer, an entity is scored only when it tokenizes to
exactly one known token per character (a latin name becoming one word piece, or an [UNK], is skipped), and only
when it ends within `max_seq_length` tokens (`[CLS]` and `[SEP]` included; longer sentences are cut there). Both
skips are counted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import JSONL_SUFFIX
from ernie1.pretrain.masked_lm import MaskedLM, predict_masked
from ernie1.tasks.ner import extract_entities, read_ner_file, require_tags
from ernie1.text.jsonl_corpus import SKIP_REASONS, parse_json_text
from ernie1.text.knowledge import ENTITY, EntityDictionary, find_char_spans

Span = Tuple[int, int]  # character offsets [start, end)
_SENTENCE_END = re.compile(r"(?<=[。！？])|\n")


@dataclass(frozen=True)
class ProbeSentence:
    """A sentence and the character spans of its entities (sorted, non-overlapping)."""

    text: str
    entities: Tuple[Span, ...]


@dataclass(frozen=True)
class ProbeQuery:
    """One masked entity: the model input, the masked positions and the entity's true token ids."""

    input_ids: Tuple[int, ...]
    positions: Tuple[int, ...]
    answer: Tuple[int, ...]


@dataclass
class ProbeQueries:
    """The queries of a tokenizer over some sentences, and the entities that could not be scored."""

    queries: List[ProbeQuery] = field(default_factory=list)
    skipped_not_single_tokens: int = 0
    skipped_beyond_max_seq_length: int = 0

    @property
    def skipped(self) -> int:
        return self.skipped_not_single_tokens + self.skipped_beyond_max_seq_length


@dataclass(frozen=True)
class ProbeResult:
    """The probe's figures for one model."""

    model_dir: str
    entity_exact_match: float
    char_accuracy: float
    entities: int
    skipped_not_single_tokens: int = 0
    skipped_beyond_max_seq_length: int = 0

    def line(self) -> str:
        """`<dir>: entity_exact_match=<float> char_accuracy=<float> entities=<int>` (floats with 4 decimals)."""
        return (
            f"{self.model_dir}: entity_exact_match={self.entity_exact_match:.4f} "
            f"char_accuracy={self.char_accuracy:.4f} entities={self.entities}"
        )

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------------------------
# Sentences


def conll_sentences(path: str, flag: str = "--conll", max_sentences: Optional[int] = None) -> List[ProbeSentence]:
    """Sentences of a CoNLL/BIO file with their gold entity spans (every type), in file order."""
    examples = read_ner_file(path, flag)
    require_tags(examples, f"{flag} {path}")
    sentences = []
    for example in examples[:max_sentences]:
        offsets = np.concatenate([[0], np.cumsum([len(word) for word in example.words])]).tolist()
        spans = tuple((offsets[start], offsets[end]) for _kind, start, end in extract_entities(example.tags))
        sentences.append(ProbeSentence(example.text, spans))
    return sentences


def split_sentences(text: str) -> List[str]:
    """Sentences of a text: cut after 。！？ and at line breaks; blank pieces dropped, whitespace stripped."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


def _read_lines(path: str, flag: str) -> Iterator[Tuple[int, bytes]]:
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield number, raw
    except FileNotFoundError:
        raise ToolkitError(f"{flag} {path}: file not found") from None
    except IsADirectoryError:
        raise ToolkitError(f"{flag} {path}: is a directory; pass a text or .jsonl file") from None
    except OSError as error:
        raise ToolkitError(f"{flag} {path}: cannot read ({error.strerror})") from None


def read_texts(path: str, flag: str = "--text_file", json_key: str = "text") -> Iterator[str]:
    """The texts of a file: one per line, or the `json_key` string of each line of a `.jsonl` file."""
    is_jsonl = Path(path).name.endswith(JSONL_SUFFIX)
    for number, raw in _read_lines(path, flag):
        if is_jsonl:
            text, reason = parse_json_text(raw, json_key)
            if reason is not None:
                message = SKIP_REASONS[reason].replace("--json_key", f"--json_key ({json_key})")
                raise ToolkitError(f"{flag} {path}:{number}: {message}")
            yield text
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ToolkitError(
                f"{flag} {path}:{number}: not UTF-8 text (byte {error.start + 1} of the line)"
            ) from None


def detected_entities(text: str, entity_dict: Optional[EntityDictionary] = None, tagger: str = "jieba") -> List[Span]:
    """Entity spans the toolkit's knowledge detection finds in `text` (first of overlapping spans kept)."""
    spans: List[Span] = []
    for start, end, kind in find_char_spans(text, entity_dict, tagger):
        if kind == ENTITY and (not spans or start >= spans[-1][1]):
            spans.append((start, end))
    return spans


def text_file_sentences(
    path: str,
    flag: str = "--text_file",
    json_key: str = "text",
    entity_dict: Optional[EntityDictionary] = None,
    tagger: str = "jieba",
    max_sentences: Optional[int] = None,
) -> List[ProbeSentence]:
    """Sentences of a text / JSON-lines file with the entities the toolkit detects in them."""
    if tagger == "jieba":
        import jieba

        # jieba logs "Building prefix dict ..." on its first cut; not the probe's output.
        jieba.setLogLevel(logging.WARNING)
    sentences: List[ProbeSentence] = []
    for text in read_texts(path, flag, json_key):
        for sentence in split_sentences(text):
            if max_sentences is not None and len(sentences) >= max_sentences:
                return sentences
            sentences.append(ProbeSentence(sentence, tuple(detected_entities(sentence, entity_dict, tagger))))
    return sentences


# --------------------------------------------------------------------------------------------------------------------
# Queries


def _ids(tokenizer: Any, text: str) -> List[int]:
    return list(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))) if text else []


def _entity_ids(tokenizer: Any, text: str) -> Optional[List[int]]:
    """The entity's token ids when each character is one known token, else None."""
    ids = _ids(tokenizer, text)
    if len(ids) != len(text) or int(tokenizer.unk_token_id) in ids:
        return None
    return ids


def sentence_tokens(sentence: ProbeSentence, tokenizer: Any) -> Tuple[List[int], List[Optional[Span]]]:
    """The sentence's token ids and, per entity, its token span (None when it is not one token per character).

    Text between entities is tokenized as a whole, so context reads as the tokenizer reads it elsewhere.
    """
    ids: List[int] = []
    token_spans: List[Optional[Span]] = []
    position = 0
    for start, end in sentence.entities:
        ids += _ids(tokenizer, sentence.text[position:start])
        entity = _entity_ids(tokenizer, sentence.text[start:end])
        if entity is None:
            ids += _ids(tokenizer, sentence.text[start:end])
            token_spans.append(None)
        else:
            token_spans.append((len(ids), len(ids) + len(entity)))
            ids += entity
        position = end
    ids += _ids(tokenizer, sentence.text[position:])
    return ids, token_spans


def build_queries(
    sentences: Sequence[ProbeSentence], tokenizer: Any, max_seq_length: int, max_entities: Optional[int] = None
) -> ProbeQueries:
    """One query per scorable entity, in sentence order, at most `max_entities`."""
    result = ProbeQueries()
    budget = max_seq_length - 2
    cls_id, sep_id, mask_id = (int(tokenizer.cls_token_id), int(tokenizer.sep_token_id), int(tokenizer.mask_token_id))
    for sentence in sentences:
        ids, token_spans = sentence_tokens(sentence, tokenizer)
        context = [cls_id, *ids[:budget], sep_id]
        for span in token_spans:
            if max_entities is not None and len(result.queries) >= max_entities:
                return result
            if span is None:
                result.skipped_not_single_tokens += 1
            elif span[1] > budget:
                result.skipped_beyond_max_seq_length += 1
            else:
                positions = tuple(range(span[0] + 1, span[1] + 1))  # +1: [CLS]
                masked = list(context)
                for p in positions:
                    masked[p] = mask_id
                answer = tuple(context[p] for p in positions)
                result.queries.append(ProbeQuery(tuple(masked), positions, answer))
    return result


# --------------------------------------------------------------------------------------------------------------------
# Scoring


def query_hits(masked_lm: MaskedLM, queries: Sequence[ProbeQuery], batch_size: int = 32) -> List[np.ndarray]:
    """Per query, a boolean per masked character: is the argmax prediction the true token?"""
    if not queries:
        return []
    predictions = predict_masked(
        masked_lm, [q.input_ids for q in queries], [q.positions for q in queries], batch_size=batch_size
    )
    return [ids[:, 0] == np.asarray(query.answer) for query, (ids, _probabilities) in zip(queries, predictions)]


def score_hits(hits: Sequence[np.ndarray]) -> Tuple[float, float]:
    """(entity_exact_match, char_accuracy) of `query_hits`; (0.0, 0.0) without queries."""
    if not hits:
        return 0.0, 0.0
    exact = sum(bool(right.all()) for right in hits)
    return exact / len(hits), sum(int(right.sum()) for right in hits) / sum(len(right) for right in hits)


def score_queries(masked_lm: MaskedLM, queries: Sequence[ProbeQuery], batch_size: int = 32) -> Tuple[float, float]:
    """(entity_exact_match, char_accuracy) of argmax predictions; (0.0, 0.0) without queries."""
    return score_hits(query_hits(masked_lm, queries, batch_size))


def probe(
    masked_lm: MaskedLM,
    sentences: Sequence[ProbeSentence],
    max_seq_length: int = 128,
    max_entities: Optional[int] = None,
    batch_size: int = 32,
) -> ProbeResult:
    """The probe's figures for one model over `sentences` (tokenized with the model's own tokenizer)."""
    built = build_queries(sentences, masked_lm.tokenizer, max_seq_length, max_entities)
    exact, char_accuracy = score_queries(masked_lm, built.queries, batch_size)
    return ProbeResult(
        masked_lm.name,
        exact,
        char_accuracy,
        len(built.queries),
        built.skipped_not_single_tokens,
        built.skipped_beyond_max_seq_length,
    )
