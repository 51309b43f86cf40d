"""The CJK rules, once: which characters count as Chinese, and the `##<char>` vocabulary extension.

Two ranges on purpose:

* U+4E00..U+9FA5, the original's test (`[\\u4E00-\\u9FA5]`), for whole-word `##` marking, the `##<char>` vocab
  extension and the masking's `##<char>` -> `<char>` restore. Changing it would change the stored ids of every
  corpus and the extension's ids, so it stays the original's, not Unicode's.
* The WordPiece basic tokenizer's ranges (BERT's `_is_chinese_char`, which paddlenlp copies): characters that the
  tokenizer always cuts into single tokens. Code that must agree with the tokenizer's splitting (e.g. answer spans
  in reading comprehension) uses `is_tokenizer_cjk_char`.
"""

from __future__ import annotations

import re
from typing import Container, Iterable, List

import numpy as np

CJK_FIRST, CJK_LAST = 0x4E00, 0x9FA5
SHARP = "##"
_CJK_CHAR = re.compile(f"[{chr(CJK_FIRST)}-{chr(CJK_LAST)}]")

# BERT's BasicTokenizer._is_chinese_char ranges (paddlenlp.transformers.bert.tokenizer), inclusive.
TOKENIZER_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk_char(char: str) -> bool:
    """True when `char` is one character in U+4E00..U+9FA5."""
    return len(char) == 1 and CJK_FIRST <= ord(char) <= CJK_LAST


def has_cjk_char(token: str) -> bool:
    """True when `token` contains a character in U+4E00..U+9FA5 (`##中` and `a中` do; `[UNK]` and digits do not)."""
    return _CJK_CHAR.search(token) is not None


def cjk_codepoint_mask(codepoints: np.ndarray) -> np.ndarray:
    """Boolean array: which of the integer `codepoints` lie in U+4E00..U+9FA5 (vectorised `is_cjk_char`)."""
    codepoints = np.asarray(codepoints)
    return (codepoints >= CJK_FIRST) & (codepoints <= CJK_LAST)


def is_tokenizer_cjk_char(char: str) -> bool:
    """True when the WordPiece basic tokenizer makes `char` a token of its own (BERT's CJK ranges, wider)."""
    code = ord(char)
    return any(first <= code <= last for first, last in TOKENIZER_CJK_RANGES)


def cjk_extension_tokens(tokens: Iterable[str], existing: Container[str] = ()) -> List[str]:
    """The `##<c>` tokens the vocab extension adds: one per single-CJK-character token of `tokens`, in their order,
    whose `##` form is neither among `tokens` nor in `existing` (the original's `extend_chinese_char` rule).

    Given the vocab in id order, the i-th returned token gets id `len(vocab) + i`.
    """
    tokens = list(tokens)
    present = set(tokens)
    added: dict = {}
    for token in tokens:
        if is_cjk_char(token):
            marked = SHARP + token
            if marked not in present and marked not in existing:
                added[marked] = None
    return list(added)
