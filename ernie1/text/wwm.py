"""Whole-word `##` marking of Chinese tokens: the original's reference algorithm (slow, pure Python).

`ernie1.text.encoder` computes the same ids in bulk; this module is its test oracle and the fallback for
tokenizers the fast path does not understand.
"""

from __future__ import annotations

from typing import Iterable, List

from ernie1.text.cjk import has_cjk_char

DEFAULT_MAX_WORD_LEN = 6


def mark_whole_words(tokens: List[str], words: Iterable[str], max_word_len: int = DEFAULT_MAX_WORD_LEN) -> List[str]:
    """Prefix `##` to the non-initial tokens of each segmented word, scanning greedily for the longest match.

    At each CJK token, windows of `max_word_len`..1 tokens are tried; the first whose concatenation is one of `words`
    is emitted with its first token unchanged and the others as `##<token>`. Example: 通过利用mercer核 with words
    [通过, 利用, mercer, 核] -> 通 ##过 利 ##用 me ##rc ##er 核.
    """
    word_set = set(words)
    marked: List[str] = []
    i = 0
    num_tokens = len(tokens)
    while i < num_tokens:
        token = tokens[i]
        # Tokens without a U+4E00..U+9FA5 character (English wordpieces, [UNK], digits) never start a marked word.
        if not has_cjk_char(token):
            marked.append(token)
            i += 1
            continue
        length = 1
        for window in range(min(max_word_len, num_tokens - i), 1, -1):
            if "".join(tokens[i : i + window]) in word_set:
                length = window
                break
        marked.append(token)
        marked.extend("##" + follower for follower in tokens[i + 1 : i + length])
        i += length
    return marked
