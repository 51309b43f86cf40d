"""µs per pretraining sample (segments, truncation, masking) at seq 128 and 512, per masking level and schedule.

    .venv/bin/python benchmarks/bench_dataset.py                         # builds a corpus from the demo news text
    .venv/bin/python benchmarks/bench_dataset.py --input_prefix data/demo --vocab vocab.txt

Without --input_prefix a real-text corpus is written to a temporary directory with `tests/support.py`
(`write_tiny_prefix`: jieba words marked with `##`), and phrase/entity levels use synthetic knowledge spans
(a pair of words in every four). With a prefix that has `<prefix>_knowledge.npz`, those spans are used.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.data.dataset import ErnieDataset  # noqa: E402
from ernie1.data.dataset_config import ErnieDatasetConfig  # noqa: E402
from ernie1.data.index_helpers import build_mapping  # noqa: E402
from ernie1.data.indexed_dataset import MMapIndexedDataset  # noqa: E402
from ernie1.data.knowledge_spans import load_knowledge_spans  # noqa: E402
from ernie1.data.masking import MaskingVocab  # noqa: E402

SCHEDULE = "char:0-0.3,phrase:0.3-0.6,entity:0.6-1"


def time_dataset(dataset: ErnieDataset, samples: int, repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` CPU µs per sample over the first `samples` indices, and the mean sample length.

    CPU time of this process (not wall time), so that other load on a shared machine distorts the figure less.
    """
    count = min(samples, len(dataset))
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        for index in range(count):
            dataset[index]
        best = min(best, time.process_time() - began)
    mean_length = float(np.mean([len(dataset[i]["input_ids"]) for i in range(min(count, 200))]))
    return best / count * 1e6, mean_length


def main(argv=None) -> int:
    """Run the benchmark and print one line per (seq length, level)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input_prefix", help="an existing corpus prefix (default: build one)")
    parser.add_argument("--vocab", help="its vocab.txt (default: the cn-clip bert-base-chinese vocab)")
    parser.add_argument("--num_docs", type=int, default=300, help="documents of the built corpus")
    parser.add_argument("--samples", type=int, default=2000, help="samples timed per configuration")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from tests import support

    vocab = MaskingVocab.from_vocab_file(args.vocab or str(support.vocab_file()))
    with tempfile.TemporaryDirectory() as scratch:
        prefix = args.input_prefix or support.write_tiny_prefix(Path(scratch), args.num_docs, max_sentence_chars=200)
        indexed = MMapIndexedDataset(prefix)
        knowledge = load_knowledge_spans(prefix)
        source = "knowledge file"
        if knowledge is None:
            knowledge, source = support.synthetic_knowledge(indexed, vocab, every=4), "synthetic spans"
        print(
            f"corpus {prefix}: {len(indexed.doc_idx) - 1} docs, {len(indexed)} sentences, {len(indexed.ids)} tokens; "
            f"phrase/entity from {source}; python {platform.python_version()}, numpy {np.__version__}, "
            f"{platform.processor() or platform.machine()}"
        )
        started = time.process_time()
        for _ in range(1000):
            np.random.RandomState(1234)
        print(f"reference: np.random.RandomState(seed) alone costs {(time.process_time() - started) * 1e3:.1f} CPU µs")
        print(f"{'seq':>5} {'level':<48} {'CPU µs/sample':>13} {'mean len':>9}")
        for max_seq_length in (128, 512):
            mapping = build_mapping(
                indexed.doc_idx,
                indexed.sizes,
                max_seq_length=max_seq_length - 3,
                short_seq_prob=0.1,
                seed=1,
                min_num_sent=2,
                max_num_samples=args.samples,
            )
            for level, prob in (
                ("word (masked_lm_prob 0)", 0.0),
                ("char", 0.15),
                ("word", 0.15),
                ("phrase", 0.15),
                ("entity", 0.15),
                ("word:0.6,phrase:0.2,entity:0.2", 0.15),
                (f"schedule {SCHEDULE}", 0.15),
            ):
                levels = {"masking_level": level.split(" ")[0]}
                if level.startswith("schedule"):  # the timed samples are the whole run: every stage in turn
                    levels = {"masking_schedule": SCHEDULE, "max_steps": args.samples}
                config = ErnieDatasetConfig(prefix, max_seq_length=max_seq_length, masked_lm_prob=prob, **levels)
                dataset = ErnieDataset("train", indexed, mapping, config, vocab, knowledge, 1234)
                micros, mean_length = time_dataset(dataset, args.samples, args.repeats)
                print(f"{max_seq_length:>5} {level:<48} {micros:>13.1f} {mean_length:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
