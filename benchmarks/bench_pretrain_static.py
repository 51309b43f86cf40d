"""Static-graph (PIR) pretraining throughput on CPU: training tokens/s of one fixed tiny config.

    .venv/bin/python benchmarks/bench_pretrain_static.py              # 1 and 2 threads, 30 timed steps each
    .venv/bin/python benchmarks/bench_pretrain_static.py --threads 2 --steps 50

Synthetic batches in the collated format (no data pipeline in the loop), so the figure is the executor's alone.
Tokens are counted as the training logs count them: micro_batch_size x seq_len per step.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pretrain import TINY, VOCAB_SIZE, bench_dygraph, synthetic_batch  # noqa: E402


def bench_static(
    threads: int = 2,
    micro_batch_size: int = 8,
    seq_len: int = 128,
    steps: int = 30,
    warmup_steps: int = 5,
    serial_run: bool = True,
    model: Optional[Dict[str, int]] = None,
) -> Dict[str, float]:
    """Train `warmup_steps + steps` static steps of the tiny config; returns tokens/s and ms/step of the timed ones."""
    import paddle
    from paddlenlp.transformers import ErnieConfig

    from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig
    from ernie1.pretrain.engines.static_program import (
        build_static_programs,
        create_executor,
        initialize_parameters,
        train_step,
    )

    paddle.enable_static()
    paddle.base.core.set_num_threads(threads)
    paddle.set_flags({"FLAGS_new_executor_serial_run": serial_run})
    config = PretrainConfig(
        model=ModelConfig(),
        optim=OptimConfig(
            max_lr=1e-4, min_lr=1e-5, warmup_steps=0, decay_steps=1000, weight_decay=0.01, grad_clip=1.0
        ),
        schedule=ScheduleConfig(global_batch_size=micro_batch_size, micro_batch_size=micro_batch_size, max_steps=1000),
        runtime=RuntimeConfig(device="cpu"),
    )
    ernie_config = ErnieConfig(vocab_size=VOCAB_SIZE, hidden_act="relu", **(model or TINY))
    rng = np.random.RandomState(0)
    batches = [synthetic_batch(rng, micro_batch_size, seq_len) for _ in range(4)]
    try:
        with paddle.static.scope_guard(paddle.static.Scope()):
            programs = build_static_programs(config, ernie_config)
            exe = create_executor("cpu")
            initialize_parameters(exe, programs, seed=1, rank=0)
            for step in range(warmup_steps):
                train_step(exe, programs, [batches[step % len(batches)]])
            start = time.perf_counter()
            for step in range(steps):
                train_step(exe, programs, [batches[step % len(batches)]])
            elapsed = time.perf_counter() - start
    finally:
        paddle.disable_static()
    return {
        "tokens_per_second": steps * micro_batch_size * seq_len / elapsed,
        "ms_per_step": 1000.0 * elapsed / steps,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print one line per measured setting: the median over `--rounds` interleaved rounds (the machine is shared)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--micro_batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every setting, interleaved; report the median")
    parser.add_argument("--compare_serial_run", action="store_true", help="also time FLAGS_new_executor_serial_run=0")
    parser.add_argument("--compare_dygraph", action="store_true", help="also time the same steps in dygraph")
    args = parser.parse_args(argv)
    shape = (args.micro_batch_size, args.seq_len, args.steps)
    settings: Dict[str, Callable[[], Dict[str, float]]] = {}
    for threads in args.threads:
        settings[f"static threads={threads} serial_run=1"] = functools.partial(bench_static, threads, *shape)
    if args.compare_serial_run:
        for threads in (t for t in args.threads if t > 1):
            settings[f"static threads={threads} serial_run=0"] = functools.partial(
                bench_static, threads, *shape, serial_run=False
            )
    if args.compare_dygraph:
        for threads in args.threads:
            settings[f"dygraph threads={threads}"] = functools.partial(bench_dygraph, threads, *shape)
    print(
        f"pretraining step throughput, CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores "
        f"visible, load average {os.getloadavg()[0]:.1f}), model {TINY} vocab {VOCAB_SIZE}, micro batch "
        f"{args.micro_batch_size} x seq {args.seq_len}, {args.steps} timed steps, median of {args.rounds} round(s)"
    )
    results: Dict[str, List[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, run in settings.items():
            results[name].append(run()["ms_per_step"])
    for name, times in results.items():
        ms_per_step = statistics.median(times)
        tokens_per_second = 1000.0 * args.micro_batch_size * args.seq_len / ms_per_step
        print(f"{name}: {tokens_per_second:.0f} tokens/s, {ms_per_step:.1f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
