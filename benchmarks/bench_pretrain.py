"""Pretraining throughput on CPU: training tokens/s of one fixed tiny config, one function per entry point.

    .venv/bin/python benchmarks/bench_pretrain.py                      # dygraph, static and Trainer, 2 threads
    .venv/bin/python benchmarks/bench_pretrain.py --entry dygraph --threads 1 2 --steps 40

Synthetic batches in ernie1.data.collate's format (no data pipeline in the loop), so the figure is the training step's
alone: forward, loss, backward, AdamW with the no-decay filter and global-norm clipping. Tokens are counted as the
training logs count them: micro_batch_size x seq_len per step. Same tiny config as bench_pretrain_static.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = dict(
    hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512, max_position_embeddings=512
)
VOCAB_SIZE = 21128  # bert-base-chinese, the demo vocabulary: the LM head's cost depends on it


def synthetic_batch(
    rng: np.random.RandomState, batch_size: int, seq_len: int, vocab_size: int = VOCAB_SIZE
) -> Dict[str, np.ndarray]:
    """A collated batch: 15% of positions masked per row, M a multiple of 8, SOP labels."""
    input_ids = rng.randint(1, vocab_size, (batch_size, seq_len)).astype("int64")
    per_row = max(1, round(0.15 * seq_len))
    rows = [
        np.sort(rng.choice(np.arange(1, seq_len), per_row, replace=False)) + i * seq_len for i in range(batch_size)
    ]
    positions = np.concatenate(rows).astype("int32")
    return {
        "input_ids": input_ids,
        "token_type_ids": (np.arange(seq_len) >= seq_len // 2).astype("int64")[None].repeat(batch_size, 0),
        "attention_mask": np.zeros((batch_size, 1, 1, seq_len), "float32"),
        "masked_positions": positions,
        "masked_lm_labels": input_ids.reshape(-1)[positions].reshape(-1, 1),
        "next_sentence_labels": rng.randint(0, 2, (batch_size, 1)).astype("int64"),
    }


def bench_dygraph(
    threads: int = 2, micro_batch_size: int = 8, seq_len: int = 128, steps: int = 30, warmup_steps: int = 5
) -> Dict[str, float]:
    """Time `steps` dygraph train steps (after `warmup_steps`) of the tiny config; tokens/s and ms/step."""
    import paddle
    from paddlenlp.transformers import ErnieConfig

    from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig
    from ernie1.pretrain.engines.dygraph import DygraphEngine
    from ernie1.pretrain.runtime import Placement

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(threads)
    paddle.seed(1)
    optim = OptimConfig(max_lr=1e-4, min_lr=1e-5, warmup_steps=0, decay_steps=1000, weight_decay=0.01, grad_clip=1.0)
    config = PretrainConfig(
        model=ModelConfig(),
        optim=optim,
        schedule=ScheduleConfig(global_batch_size=micro_batch_size, micro_batch_size=micro_batch_size, max_steps=1000),
        runtime=RuntimeConfig(device="cpu"),
    )
    ernie_config = ErnieConfig(vocab_size=VOCAB_SIZE, hidden_act="relu", **TINY)
    engine = DygraphEngine(config, Placement("cpu", 1, 0, 0, 0, 1), None, ernie_config)
    rng = np.random.RandomState(0)
    batches = [
        {key: paddle.to_tensor(value) for key, value in synthetic_batch(rng, micro_batch_size, seq_len).items()}
        for _ in range(4)
    ]
    engine.set_training(True)
    for step in range(warmup_steps):
        engine.step([batches[step % 4]])
    start = time.perf_counter()
    for step in range(steps):
        engine.step([batches[step % 4]])
    elapsed = time.perf_counter() - start
    return {"tokens_per_second": steps * micro_batch_size * seq_len / elapsed, "ms_per_step": 1000 * elapsed / steps}


def _static_entry() -> Callable[..., Dict[str, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_pretrain_static import bench_static

    return bench_static


def _trainer_entry() -> Callable[..., Dict[str, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_pretrain_trainer import bench_trainer

    return bench_trainer


# One function per entry point, same tiny config and synthetic batches: run_pretrain.py, run_pretrain_static.py,
# run_pretrain_trainer.py.
ENTRY_POINTS: Dict[str, Callable[[], Callable[..., Dict[str, float]]]] = {
    "dygraph": lambda: bench_dygraph,
    "static": _static_entry,
    "trainer": _trainer_entry,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print one line per (entry point, thread count)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", nargs="+", default=list(ENTRY_POINTS), choices=list(ENTRY_POINTS))
    parser.add_argument("--threads", nargs="+", type=int, default=[2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--micro_batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    args = parser.parse_args(argv)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
        f"tiny ERNIE {TINY['num_hidden_layers']}x{TINY['hidden_size']} vocab {VOCAB_SIZE}, "
        f"micro batch {args.micro_batch_size} x seq {args.seq_len}"
    )
    rows: List[str] = []
    for entry in args.entry:
        bench = ENTRY_POINTS[entry]()
        for threads in args.threads:
            result = bench(
                threads=threads, micro_batch_size=args.micro_batch_size, seq_len=args.seq_len, steps=args.steps
            )
            rows.append(
                f"{entry:8s} threads={threads}  {result['tokens_per_second']:9.0f} tokens/s  "
                f"{result['ms_per_step']:7.1f} ms/step"
            )
            print(rows[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
