"""Building a WordPiece vocab.txt from a JSON-lines corpus (CJK characters as single tokens), and writing it.

Selection rule (after the basic tokenizer: lower-casing, accent stripping, CJK and punctuation split):
1. `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0..4).
2. Every character seen at least `min_frequency` times, and the `##<c>` form of every such character that occurs
   inside a non-CJK word, so WordPiece can always fall back to single characters (no [UNK] for seen characters).
3. The remaining slots go, by descending corpus count (ties alphabetical), to pieces counted over the non-CJK words:
   the whole word, its prefixes of 2+ characters, and `##` + its suffixes of 2+ characters, each counted with the
   word's frequency; only pieces with count >= `min_frequency` qualify.
The `##`-CJK extension (`ernie1.text.cjk.cjk_extension_tokens`) may then be appended in vocab order: its ids match
`ernie1.text.tokenizer.extend_chinese_char` on the base vocab.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Counter, Iterable, Iterator, List, Sequence, Tuple

from ernie1.common.errors import ToolkitError
from ernie1.text.jsonl_corpus import SKIP_REASONS, iter_raw_lines, parse_json_text
from ernie1.text.tokenizer import SPECIAL_TOKENS


def iter_texts(files: Sequence[Path], json_key: str) -> Iterator[str]:
    """Each document's text; an unusable line raises a ToolkitError naming file, line and reason."""
    for file_index, line_number, raw in iter_raw_lines(list(files)):
        text, reason = parse_json_text(raw, json_key)
        if reason is not None:
            raise ToolkitError(f"--input_path {files[file_index]}:{line_number}: {SKIP_REASONS[reason]}")
        yield text


def count_corpus(texts: Iterable[str], lower: bool) -> Tuple[Counter[str], Counter[str]]:
    """(character counts, non-CJK word counts) over the basic tokenizer's output."""
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    basic = BasicTokenizer(do_lower_case=lower)
    chars: Counter[str] = collections.Counter()
    words: Counter[str] = collections.Counter()
    for text in texts:
        for token in basic.tokenize(text):
            if len(token) == 1:
                chars[token] += 1
            else:
                words[token] += 1
    for word, count in words.items():
        for char in word:
            chars[char] += count
    return chars, words


def select_vocab(
    chars: Counter[str], words: Counter[str], vocab_size: int, min_frequency: int, max_piece_chars: int
) -> List[str]:
    """The base vocab in id order, by the rule in the module docstring."""
    kept_chars = sorted((c for c, n in chars.items() if n >= min_frequency), key=lambda c: (-chars[c], c))
    inner_chars = {c for word in words for c in word[1:]}
    required = list(SPECIAL_TOKENS) + kept_chars + ["##" + c for c in kept_chars if c in inner_chars]
    if vocab_size < len(required):
        raise ToolkitError(
            f"--vocab_size {vocab_size}: too small for the {len(required)} special tokens and single characters "
            f"seen >= --min_frequency {min_frequency} times; raise --vocab_size or --min_frequency"
        )
    pieces: Counter[str] = collections.Counter()
    for word, count in words.items():
        for end in range(2, min(len(word), max_piece_chars) + 1):
            pieces[word[:end]] += count
        for start in range(max(1, len(word) - max_piece_chars), len(word) - 1):
            pieces["##" + word[start:]] += count
    taken = set(required)
    ranked = sorted(
        (p for p, n in pieces.items() if n >= min_frequency and p not in taken), key=lambda p: (-pieces[p], p)
    )
    return required + ranked[: vocab_size - len(required)]


def write_vocab(tokens: Sequence[str], output_path: str) -> Path:
    """Write one token per line (parent directories created, written atomically)."""
    path = Path(output_path)
    if path.is_dir():
        raise ToolkitError(f"--output_path {output_path}: is a directory; name the vocab file, e.g. vocab.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    partial.replace(path)
    return path
