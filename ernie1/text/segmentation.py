"""Chinese word segmenters for whole-word masking (`--cn_seg_func`), imported lazily.

Both backends cut in jieba's default mode (precise, HMM on for unknown words), so `rjieba` (a Rust port, ~20x faster)
is a drop-in replacement for `jieba`: same words on real news text (tests/data_tools/test_segmentation.py).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from typing import Callable, Dict, List, Tuple

from ernie1.common.errors import ToolkitError

WordSegmenter = Callable[[str], List[str]]

SEGMENTER_CHOICES = ("jieba", "rjieba")

# jieba's HMM fallback (jieba/finalseg) splits the non-Han part of an out-of-dictionary run with this pattern;
# jieba-rs (behind rjieba) returns such runs whole: "2017-11-15", "www.cctv.com", "3.0t". Both libraries treat
# these characters as part of a word-like block, so only words containing one of them can differ.
_JIEBA_FINALSEG_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")
_BLOCK_PUNCTUATION = re.compile(r"[+#&._%\-]")
_BLOCK_RUN = re.compile(r"[a-zA-Z0-9+#&._%\-]{2,}")
# jieba's own Han test (jieba/finalseg `re_han`), not the toolkit's CJK rule (ernie1.text.cjk): this module must split
# exactly where jieba does, so it mirrors jieba's range U+4E00..U+9FD5 letter for letter.
_JIEBA_HAN = re.compile("[\u4e00-\u9fd5]")


def _jieba_segmenter() -> WordSegmenter:
    try:
        import jieba
    except ImportError as error:
        raise ToolkitError("--cn_seg_func jieba needs the jieba package: pip install jieba==0.42.1") from error
    # jieba logs "Building prefix dict ..." at INFO on its first cut; one line per worker process is noise.
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    def segment(text: str) -> List[str]:
        return jieba.lcut(text, cut_all=False, HMM=True)

    return segment


def _rjieba_segmenter() -> WordSegmenter:
    try:
        import rjieba
    except ImportError as error:
        raise ToolkitError("--cn_seg_func rjieba needs the rjieba package: pip install rjieba") from error
    cut, has_word = rjieba.cut, rjieba.has_word

    def segment(text: str) -> List[str]:
        words = cut(text, True)
        if _BLOCK_PUNCTUATION.search(text) is None:
            return words
        spans = [m.span() for m in _BLOCK_RUN.finditer(text) if _BLOCK_PUNCTUATION.search(m.group())]
        if not spans:
            return words
        return _split_like_jieba(words, spans, has_word)

    return segment


def _split_like_jieba(words: List[str], spans: List[Tuple[int, int]], has_word: Callable[[str], bool]) -> List[str]:
    """Re-split rjieba's out-of-dictionary non-Han words inside `spans` (text offsets) the way jieba's HMM does."""
    ends = list(itertools.accumulate(map(len, words)))
    replaced: Dict[int, List[str]] = {}
    for start, end in spans:
        index = bisect.bisect_right(ends, start)  # the word holding text[start]
        while index < len(words) and ends[index] - len(words[index]) < end:
            word = words[index]
            if (
                len(word) > 1
                and _BLOCK_PUNCTUATION.search(word) is not None
                and _JIEBA_HAN.search(word) is None
                and not has_word(word)
            ):
                replaced[index] = [piece for piece in _JIEBA_FINALSEG_SKIP.split(word) if piece]
            index += 1
    if not replaced:
        return words
    result: List[str] = []
    previous = 0
    for index in sorted(replaced):
        result.extend(words[previous:index])
        result.extend(replaced[index])
        previous = index + 1
    result.extend(words[previous:])
    return result


_FACTORIES: Dict[str, Callable[[], WordSegmenter]] = {"jieba": _jieba_segmenter, "rjieba": _rjieba_segmenter}


def get_word_segmenter(name: str) -> WordSegmenter:
    """Return a function `text -> list of words` (the words concatenate back to `text`) for `--cn_seg_func name`."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ToolkitError(f"--cn_seg_func {name!r} is not supported; choose one of: {', '.join(SEGMENTER_CHOICES)}")
    return factory()
