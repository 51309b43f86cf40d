"""Throughput of the index helpers, ours (`ernie1.data._index_helpers`) vs the original's prebuilt `tool_helpers`.

    .venv/bin/python benchmarks/bench_index.py [--sentences 10000000] [--repeat 3]

Synthetic corpus: documents of 1-40 sentences (mean ~20), sentences of 5-60 tokens, as an ERNIE corpus looks after
sentence splitting. Prints items per CPU second for each function (sentences for the maps, slots for blending,
samples for GPT).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ernie1.data import _index_helpers as ours  # noqa: E402

INT32_SENTINEL = np.iinfo(np.int32).max - 1
INT64_SENTINEL = np.iinfo(np.int64).max - 1


def synthetic_corpus(num_sentences: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 41, num_sentences // 10 + 1)
    ends = np.cumsum(counts)
    ends = ends[ends < num_sentences]
    doc_idx = np.concatenate([[0], ends, [num_sentences]]).astype(np.int64)
    sizes = rng.integers(5, 61, num_sentences).astype(np.int32)
    return doc_idx, sizes


def best_time(function, repeat: int) -> float:
    """Best CPU seconds of `repeat` runs: the helpers are single-threaded, and on a shared machine CPU time is far
    steadier than wall time (which also counts the time other jobs hold the core)."""
    times = []
    for _ in range(repeat):
        began = time.process_time()
        function()
        times.append(time.process_time() - began)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000_000, help="sentences in the synthetic corpus")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    args = parser.parse_args(argv)
    try:
        import tool_helpers.helpers as original
    except ImportError:
        original = None
    doc_idx, sizes = synthetic_corpus(args.sentences)
    num_sentences, num_docs = len(sizes), len(doc_idx) - 1
    titles = np.full(num_docs, 8, dtype=np.int32)
    weights = np.array([0.5, 0.3, 0.2])
    gpt_doc_idx = np.arange(num_docs, dtype=np.int32)
    doc_tokens = np.add.reduceat(sizes.astype(np.int64), doc_idx[:-1])
    gpt_sizes = np.minimum(doc_tokens, np.iinfo(np.int32).max).astype(np.int32)
    gpt_tokens = int(gpt_sizes.sum())

    def blending(module):
        def run():
            module.build_blending_indices(
                np.zeros(num_sentences, np.uint8), np.zeros(num_sentences, np.int64), weights, 3, num_sentences, False
            )

        return run

    # A request of 2.5 epochs' worth of samples runs exactly three whole epochs.
    rows_per_epoch = len(ours.build_mapping(doc_idx, sizes, 1, INT64_SENTINEL, 509, 0.1, 1234, False, 2))
    three_epochs_request = int(2.5 * rows_per_epoch)
    cases = [
        (
            "build_mapping, 1 epoch, ssp 0.1",
            num_sentences,
            "sentences",
            lambda m: lambda: m.build_mapping(doc_idx, sizes, 1, INT64_SENTINEL, 509, 0.1, 1234, False, 2),
        ),
        (
            "build_mapping, 3 epochs via max_num_samples",
            3 * num_sentences,
            "sentences",
            lambda m: lambda: m.build_mapping(
                doc_idx, sizes, INT32_SENTINEL, three_epochs_request, 509, 0.1, 1234, False, 2
            ),
        ),
        (
            "build_blocks_mapping, 1 epoch",
            num_sentences,
            "sentences",
            lambda m: lambda: m.build_blocks_mapping(
                doc_idx, sizes, titles, 1, INT64_SENTINEL, 288, 1234, False, False
            ),
        ),
        ("build_blending_indices, 3 datasets", num_sentences, "slots", blending),
        (
            "build_sample_idx, seq_length 1024",
            gpt_tokens // 1024,
            "samples",
            lambda m: lambda: m.build_sample_idx(gpt_sizes, gpt_doc_idx, 1024, 1, gpt_tokens),
        ),
    ]
    print(
        f"corpus: {num_sentences:,} sentences in {num_docs:,} documents; best of {args.repeat}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "rates per CPU second"
    )
    print(f"{'function':46s} {'ours':>14s} {'tool_helpers':>14s} {'speed-up':>9s}")
    for label, items, unit, make in cases:
        ours_s = best_time(make(ours), args.repeat)
        if original is not None:
            original_s = best_time(make(original), args.repeat)
            reference = f"{items / original_s:14.3g} {original_s / ours_s:8.1f}x"
        else:
            reference = f"{'n/a':>14s} {'':>9s}"
        print(f"{label:46s} {items / ours_s:14.3g} {reference}   ({unit}/s; ours {ours_s * 1e3:.0f} ms CPU)")
    # Sanity: both produce the same map (the tests check this on many small inputs).
    if original is not None:
        same = np.array_equal(
            ours.build_mapping(doc_idx, sizes, 1, INT64_SENTINEL, 509, 0.1, 1234, False, 2),
            original.build_mapping(doc_idx, sizes, 1, INT64_SENTINEL, 509, 0.1, 1234, False, 2),
        )
        print(f"identical build_mapping output on this corpus: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
