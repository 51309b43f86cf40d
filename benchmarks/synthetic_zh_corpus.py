"""A synthetic Chinese corpus from nothing but this file: JSON lines of word-segmented documents (for gpu_check.sh).

    python benchmarks/synthetic_zh_corpus.py --output corpus.jsonl --docs 400

Words are 1-4 CJK characters drawn from a fixed pool with Zipf-distributed frequencies, space-separated (so
create_pretraining_data.py --cn_splited marks whole words without a segmenter); sentences end in `。` and are one per
line. Deterministic for a seed. The text means nothing: it exercises the pipeline and the training steps, not quality.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

# The first CJK Unified Ideographs block (U+4E00..): 3000 characters are plenty for a char vocab.
_FIRST_CJK, _CHARACTERS = 0x4E00, 3000


def word_pool(rng: np.random.RandomState, size: int) -> List[str]:
    """`size` distinct words of 1-4 characters."""
    words, seen = [], set()
    while len(words) < size:
        length = int(rng.choice([1, 2, 2, 3, 4]))
        word = "".join(chr(_FIRST_CJK + int(i)) for i in rng.randint(0, _CHARACTERS, length))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def documents(num_docs: int, seed: int = 0, pool_size: int = 4000) -> List[str]:
    """`num_docs` documents of 3-12 sentences of 5-25 words each."""
    rng = np.random.RandomState(seed)
    pool = word_pool(rng, pool_size)
    weights = 1.0 / np.arange(1, pool_size + 1)
    weights /= weights.sum()
    docs = []
    for _ in range(num_docs):
        sentences = []
        for _ in range(int(rng.randint(3, 13))):
            picks = rng.choice(pool_size, int(rng.randint(5, 26)), p=weights)
            sentences.append(" ".join(pool[int(i)] for i in picks) + " 。")
        docs.append("\n".join(sentences))
    return docs


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the JSON lines file and say where."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for text in documents(args.docs, args.seed):
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    print(f"wrote {args.docs} documents to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
