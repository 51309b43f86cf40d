"""Tokens/s (forward + backward) of the ERNIE encoder with `--attention_impl paddle` vs `sdpa`.

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/bench_attention.py              # tiny + base, seq 128/512
    python benchmarks/bench_attention.py --sizes tiny --seq_lens 128 --iters 5       # quick look

The two implementations are timed alternately (ABAB...) on the same weights and batch, so a noisy shared machine
shifts both alike; the figure is the median over rounds. Prints the machine config first.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddlenlp.transformers import ErnieConfig, ErnieModel  # noqa: E402

from ernie1.pretrain.attention import ATTENTION_IMPLS, set_attention_impl  # noqa: E402

SIZES: Dict[str, Dict[str, int]] = {
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}


def machine_config() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = paddle.get_flags(["FLAGS_use_mkldnn"]) if hasattr(paddle, "get_flags") else {}
    return (
        f"paddle {paddle.__version__} ({'CUDA' if paddle.is_compiled_with_cuda() else 'CPU'} build), "
        f"device {paddle.get_device()}, python {platform.python_version()}, cpu '{cpu}', "
        f"os.cpu_count {os.cpu_count()}, sched_getaffinity {len(os.sched_getaffinity(0))}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {flags}"
    )


def build(size: str, seq_len: int) -> ErnieModel:
    config = ErnieConfig(
        vocab_size=18000,
        max_position_embeddings=max(513, seq_len + 1),
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        hidden_act="relu",
        **SIZES[size],
    )
    model = ErnieModel(config)
    model.train()
    return model


def step(model: ErnieModel, ids: paddle.Tensor, mask: paddle.Tensor, dtype: str = "float32") -> None:
    # fp16/bf16: AMP O1 as the toolkit's --use_amp (GPU only; on CPU auto_cast leaves these ops in fp32).
    with paddle.amp.auto_cast(enable=dtype != "float32", dtype="float16" if dtype == "float32" else dtype):
        sequence, pooled = model(ids, attention_mask=mask)
    loss = sequence.astype("float32").mean() + pooled.astype("float32").mean()
    loss.backward()
    model.clear_gradients()
    float(loss)  # sync


def bench(size: str, seq_len: int, batch: int, iters: int, warmup: int, dtype: str = "float32") -> Dict[str, float]:
    paddle.seed(0)
    model = build(size, seq_len)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 18000, (batch, seq_len))
    lengths = rng.integers(seq_len // 2, seq_len + 1, batch)  # realistic padding
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
    ids_t = paddle.to_tensor(ids, dtype="int64")
    mask = paddle.to_tensor(((ids == 0) * -1e4).astype("float32")[:, None, None, :])
    times: Dict[str, List[float]] = {impl: [] for impl in ATTENTION_IMPLS}
    cpu_times: Dict[str, List[float]] = {impl: [] for impl in ATTENTION_IMPLS}
    for impl in ATTENTION_IMPLS:
        set_attention_impl(model, impl)
        for _ in range(warmup):
            step(model, ids_t, mask, dtype)
    for _ in range(iters):
        for impl in ATTENTION_IMPLS:
            set_attention_impl(model, impl)
            start, cpu_start = time.perf_counter(), time.process_time()
            step(model, ids_t, mask, dtype)
            times[impl].append(time.perf_counter() - start)
            cpu_times[impl].append(time.process_time() - cpu_start)
    tokens = batch * seq_len
    result = {impl: tokens / statistics.median(values) for impl, values in times.items()}
    # CPU seconds (all threads) per step: less sensitive than wall time to other jobs on a shared machine.
    result.update({f"{impl}_cpu": tokens / statistics.median(values) for impl, values in cpu_times.items()})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=sorted(SIZES))
    parser.add_argument("--seq_lens", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--base_batch_512", type=int, default=2, help="batch for base at seq >= 512 (CPU time)")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = parser.parse_args(argv)
    paddle.set_device(args.device)
    print(machine_config() + f", dtype {args.dtype}", flush=True)
    print(
        f"{'size':5} {'seq':>4} {'batch':>5} {'paddle tok/s':>13} {'sdpa tok/s':>11} {'sdpa/paddle':>11}"
        f" | per CPU-second: {'paddle':>7} {'sdpa':>7} {'ratio':>6}",
        flush=True,
    )
    for size in args.sizes:
        for seq_len in args.seq_lens:
            batch = args.base_batch_512 if size == "base" and seq_len >= 512 else args.batch
            result = bench(size, seq_len, batch, args.iters, args.warmup, args.dtype)
            ratio = result["sdpa"] / result["paddle"]
            cpu_ratio = result["sdpa_cpu"] / result["paddle_cpu"]
            print(
                f"{size:5} {seq_len:>4} {batch:>5} {result['paddle']:>13.0f} {result['sdpa']:>11.0f} {ratio:>11.3f}"
                f" |                  {result['paddle_cpu']:>7.0f} {result['sdpa_cpu']:>7.0f} {cpu_ratio:>6.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
