"""Knowledge units beyond words (ERNIE 1.0: entity- and phrase-level masking), found at preprocessing time.

POS tags come from `jieba.posseg` or, with `--cn_seg_func rjieba`, from `rjieba.tag` (much faster).

Entities: POS tags for person (`nr*`), place (`ns`) and organisation (`nt`) names, adjacent person tokens
merged (`江/nr 泽民/nr`), plus exact matches of a user entity list. `nz` (other proper nouns) is left out: jieba
assigns it to many ordinary words (`普通/nz`).

Phrases: a maximal run of consecutive words tagged numeral / measure word / adjective / distinguishing word /
common noun that ends in a common noun, trimmed to its last 4 words, with at least 2 words (`三个/m 新/a 政策/n`).
A phrase identical to an entity span is dropped.

Stored as `<prefix>_knowledge.npz` beside `<prefix>_ids.npy`: `sent_ptr` int64 [num_sentences+1] (cumulative span
count), `starts` int32 and `ends` int32 (token offsets within the sentence, end exclusive), `kinds` uint8
(1 entity, 2 phrase). Spans of a sentence are sorted by (start, end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError

KNOWLEDGE_SUFFIX = "_knowledge.npz"
ENTITY, PHRASE = 1, 2
MAX_PHRASE_WORDS = 4
MIN_ENTITY_CHARS = 2
_PHRASE_MODIFIER_TAGS = frozenset({"m", "mq", "q", "a", "an", "b"})
_PHRASE_NOUN_TAGS = frozenset({"n", "ng", "nl", "nz", "vn"})

CharSpan = Tuple[int, int, int]  # (char_start, char_end_exclusive, kind)


def _entity_tag(flag: str) -> Optional[str]:
    if flag.startswith("nr"):
        return "nr"
    if flag in ("ns", "nt"):
        return flag
    return None


def _word_offsets(tagged: Sequence[Tuple[str, str]]) -> List[int]:
    offsets, position = [], 0
    for word, _flag in tagged:
        offsets.append(position)
        position += len(word)
    return offsets


def pos_entity_spans(tagged: Sequence[Tuple[str, str]]) -> List[CharSpan]:
    """Character spans of POS-tagged person/place/organisation names; consecutive person tokens become one span."""
    spans: List[CharSpan] = []
    offsets = _word_offsets(tagged)
    previous_tag = None
    for (word, flag), start in zip(tagged, offsets):
        tag = _entity_tag(flag)
        if tag == "nr" and previous_tag == "nr" and spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + len(word), ENTITY)
        elif tag is not None:
            spans.append((start, start + len(word), ENTITY))
        previous_tag = tag
    return [span for span in spans if span[1] - span[0] >= MIN_ENTITY_CHARS]


def phrase_spans(tagged: Sequence[Tuple[str, str]]) -> List[CharSpan]:
    """Character spans of noun phrases per the module docstring's chunking rule."""
    spans: List[CharSpan] = []
    offsets = _word_offsets(tagged)
    run: List[int] = []  # word indices of the current modifier/noun run
    for index in range(len(tagged) + 1):
        flag = tagged[index][1] if index < len(tagged) else ""
        if flag in _PHRASE_MODIFIER_TAGS or flag in _PHRASE_NOUN_TAGS:
            run.append(index)
            continue
        while run and tagged[run[-1]][1] not in _PHRASE_NOUN_TAGS:
            run.pop()
        run = run[-MAX_PHRASE_WORDS:]
        if len(run) >= 2:
            last = run[-1]
            spans.append((offsets[run[0]], offsets[last] + len(tagged[last][0]), PHRASE))
        run = []
    return spans


class EntityDictionary:
    """Exact-match user entities, longest match first at each position, non-overlapping, left to right."""

    def __init__(self, entities: Iterable[str]):
        by_first: Dict[str, List[str]] = {}
        for entity in {entity.strip() for entity in entities}:
            if len(entity) >= MIN_ENTITY_CHARS:
                by_first.setdefault(entity[0], []).append(entity)
        self._by_first = {char: sorted(words, key=len, reverse=True) for char, words in by_first.items()}

    def __len__(self) -> int:
        return sum(len(words) for words in self._by_first.values())

    @classmethod
    def from_file(cls, path: str) -> "EntityDictionary":
        """One entity per line, UTF-8; blank lines ignored."""
        try:
            with open(path, encoding="utf-8") as handle:
                return cls(line for line in handle if line.strip())
        except FileNotFoundError:
            raise ToolkitError(f"--entity_dict {path}: file not found") from None
        except UnicodeDecodeError as error:
            raise ToolkitError(f"--entity_dict {path}: not UTF-8 text (byte {error.start})") from None
        except OSError as error:
            raise ToolkitError(f"--entity_dict {path}: cannot read ({error.strerror})") from None

    def spans(self, text: str) -> List[CharSpan]:
        """Character spans of dictionary entities in `text`."""
        spans: List[CharSpan] = []
        position = 0
        while position < len(text):
            for entity in self._by_first.get(text[position], ()):
                if text.startswith(entity, position):
                    spans.append((position, position + len(entity), ENTITY))
                    position += len(entity)
                    break
            else:
                position += 1
        return spans


POS_TAGGERS = ("jieba", "rjieba")


def pos_tag(text: str, tagger: str = "jieba") -> List[Tuple[str, str]]:
    """(word, POS flag) pairs: `jieba.posseg` (reference, slow HMM) or `rjieba.tag` (same dictionary, ~30x faster).

    The two agree on dictionary words; words found only by jieba's HMM may be cut or tagged differently.
    """
    if tagger == "rjieba":
        import rjieba

        return [(word, flag) for word, flag in rjieba.tag(text)]
    if tagger != "jieba":
        raise ToolkitError(f"--cn_seg_func {tagger!r}: no POS tagger for knowledge spans; choose jieba or rjieba")
    import jieba.posseg  # lazy: jieba loads its dictionaries on first use

    return [(pair.word, pair.flag) for pair in jieba.posseg.lcut(text)]


def find_char_spans(
    text: str, entity_dict: Optional[EntityDictionary] = None, tagger: str = "jieba"
) -> List[CharSpan]:
    """All knowledge spans of one sentence in character offsets, deduplicated and sorted by (start, end)."""
    tagged = pos_tag(text, tagger)
    entities = pos_entity_spans(tagged)
    if entity_dict is not None:
        entities += entity_dict.spans(text)
    entity_ranges = {(start, end) for start, end, _kind in entities}
    phrases = [span for span in phrase_spans(tagged) if (span[0], span[1]) not in entity_ranges]
    return sorted(set(entities) | set(phrases))


def char_spans_to_token_spans(
    spans: Sequence[CharSpan], token_char_starts: Sequence[int]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map character spans to token spans [start, end) using each token's first character offset.

    A span keeps the tokens that start inside it; it is dropped when it starts mid-token (e.g. inside an English
    word piece) or covers fewer than 2 tokens (a single token is already a masking unit).
    """
    char_starts = np.asarray(token_char_starts, dtype=np.int64)
    starts, ends, kinds = [], [], []
    for char_start, char_end, kind in spans:
        first = int(np.searchsorted(char_starts, char_start, side="left"))
        end = int(np.searchsorted(char_starts, char_end, side="left"))
        if first < end and char_starts[first] == char_start and end - first >= 2:
            starts.append(first)
            ends.append(end)
            kinds.append(kind)
    return np.asarray(starts, np.int32), np.asarray(ends, np.int32), np.asarray(kinds, np.uint8)


def knowledge_path(prefix: str) -> Path:
    return Path(prefix + KNOWLEDGE_SUFFIX)


class KnowledgeSpansWriter:
    """Streams spans one sentence at a time to scratch files; `finalize()` writes the .npz via an atomic rename."""

    def __init__(self, prefix: str):
        self._path = knowledge_path(prefix)
        self._scratch = [self._path.with_name(self._path.name + f".tmp-{name}") for name in ("counts", "spans")]
        self._counts = open(self._scratch[0], "wb")
        self._spans = open(self._scratch[1], "wb")
        self.num_sentences = 0
        self.num_spans = 0

    def add_sentence(self, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray) -> None:
        """Append the spans of the next stored sentence (arrays of equal length, possibly empty)."""
        rows = np.stack([np.asarray(starts, np.int32), np.asarray(ends, np.int32), np.asarray(kinds, np.int32)], 1)
        self._counts.write(np.int64(len(rows)).tobytes())
        self._spans.write(rows.astype(np.int32).tobytes())
        self.num_sentences += 1
        self.num_spans += len(rows)

    def finalize(self) -> None:
        """Write `<prefix>_knowledge.npz`."""
        self._close()
        counts = np.fromfile(self._scratch[0], dtype=np.int64)
        rows = np.fromfile(self._scratch[1], dtype=np.int32).reshape(-1, 3)
        sent_ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=sent_ptr[1:])
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                sent_ptr=sent_ptr,
                starts=rows[:, 0].astype(np.int32),
                ends=rows[:, 1].astype(np.int32),
                kinds=rows[:, 2].astype(np.uint8),
            )
        os.replace(tmp, self._path)
        self._remove_scratch()

    def abort(self) -> None:
        """Drop everything written so far."""
        self._close()
        self._remove_scratch()

    def _close(self) -> None:
        self._counts.close()
        self._spans.close()

    def _remove_scratch(self) -> None:
        for path in self._scratch:
            if path.exists():
                os.remove(path)


@dataclass(frozen=True)
class KnowledgeSpans:
    """Knowledge spans of every sentence of one prefix (see the module docstring for the arrays)."""

    sent_ptr: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    kinds: np.ndarray

    def __len__(self) -> int:
        return len(self.sent_ptr) - 1

    def spans_of_sentence(self, sentence: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, kinds) of sentence `sentence`, token offsets within that sentence."""
        begin, end = self.sent_ptr[sentence], self.sent_ptr[sentence + 1]
        return self.starts[begin:end], self.ends[begin:end], self.kinds[begin:end]


def load_knowledge_spans(prefix: str, sentence_lengths: Optional[np.ndarray] = None) -> Optional[KnowledgeSpans]:
    """Spans of `prefix`, or None when `<prefix>_knowledge.npz` does not exist.

    Validated against `sentence_lengths` (the indexed dataset's `sizes`; read from `<prefix>_idx.npz` when omitted
    and that file exists): a different sentence count or a span past its sentence's end raises ToolkitError.
    """
    path = knowledge_path(prefix)
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            missing = [name for name in ("sent_ptr", "starts", "ends", "kinds") if name not in data.files]
            if missing:
                raise ToolkitError(
                    f"{path}: missing arrays {', '.join(missing)} (expected sent_ptr, starts, ends, kinds)"
                )
            spans = KnowledgeSpans(
                sent_ptr=np.asarray(data["sent_ptr"], np.int64),
                starts=np.asarray(data["starts"], np.int32),
                ends=np.asarray(data["ends"], np.int32),
                kinds=np.asarray(data["kinds"], np.uint8),
            )
    except (OSError, ValueError) as error:
        raise ToolkitError(f"{path}: not a readable .npz file ({error})") from None
    if sentence_lengths is None:
        idx_path = Path(prefix + "_idx.npz")
        if idx_path.is_file():
            with np.load(idx_path) as index:
                sentence_lengths = np.asarray(index["lens"])
    _validate(path, spans, sentence_lengths)
    return spans


def _validate(path: Path, spans: KnowledgeSpans, sentence_lengths: Optional[np.ndarray]) -> None:
    ptr, total = spans.sent_ptr, len(spans.starts)
    if len(ptr) == 0 or ptr[0] != 0 or ptr[-1] != total or np.any(np.diff(ptr) < 0):
        raise ToolkitError(f"{path}: 'sent_ptr' must rise from 0 to the span count {total}; the file is corrupt")
    if not len(spans.ends) == len(spans.kinds) == total:
        raise ToolkitError(f"{path}: 'starts', 'ends' and 'kinds' differ in length; the file is corrupt")
    if np.any(spans.starts < 0) or np.any(spans.ends <= spans.starts):
        raise ToolkitError(f"{path}: a span has start < 0 or end <= start; the file is corrupt")
    if sentence_lengths is None:
        return
    if len(sentence_lengths) != len(spans):
        raise ToolkitError(
            f"{path}: spans for {len(spans)} sentences but the indexed dataset has {len(sentence_lengths)}; "
            "the files do not belong together (re-run create_pretraining_data.py --knowledge_spans)"
        )
    limits = np.repeat(np.asarray(sentence_lengths, np.int64), np.diff(ptr))
    if np.any(spans.ends > limits):
        raise ToolkitError(f"{path}: a span ends past its sentence; the files do not belong together")
