"""Knowledge units beyond words (ERNIE 1.0: entity- and phrase-level masking), found at preprocessing time.

POS tags come from `jieba.posseg` or, with `--cn_seg_func rjieba`, from `rjieba.tag` (much faster).

Entities: POS tags for person (`nr*`), place (`ns`) and organisation (`nt`) names, adjacent person tokens
merged (`江/nr 泽民/nr`), plus exact matches of a user entity list. `nz` (other proper nouns) is left out: jieba
assigns it to many ordinary words (`普通/nz`).

Phrases: a maximal run of consecutive words tagged numeral / measure word / adjective / distinguishing word /
common noun that ends in a common noun, trimmed to its last 4 words, with at least 2 words (`三个/m 新/a 政策/n`).
A phrase identical to an entity span is dropped.

Detection only: the spans are stored as `<prefix>_knowledge.npz` by `ernie1.data.knowledge_spans`, with the kind
codes below (ENTITY, PHRASE).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError

# Kind codes, as stored in `<prefix>_knowledge.npz`.
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
