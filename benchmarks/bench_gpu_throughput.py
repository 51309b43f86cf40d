"""ERNIE-base pretraining throughput on one GPU: seq/s, tokens/s and MFU per attention implementation and AMP dtype.

    python benchmarks/bench_gpu_throughput.py                                   # 12x768 vocab 18000, seq 128 and 512
    python benchmarks/bench_gpu_throughput.py --amp_dtype bfloat16 --attention_impl sdpa --seq_len 128
    python benchmarks/bench_gpu_throughput.py --device cpu --model tiny --steps 2 --warmup_steps 1 --amp_dtype none

Each measurement is the dygraph engine's real training step (ernie1.pretrain.engines.dygraph: forward, the masked-LM
+ SOP loss, backward, AdamW with fp32 master weights under O2, the loss scaler under float16) on synthetic batches of
the collate's format, timed over `--steps` steps after `--warmup_steps`, with the device synchronised at both ends.

MFU = achieved FLOP/s / peak FLOP/s, with per-step FLOPs = 6 * N * T + 12 * L * H * S * T (N parameters, T = batch x
seq tokens, L layers, H hidden, S seq: the usual dense-transformer count, forward + backward, attention scores and
values included). Peak: --peak_tflops, else by GPU name (dense bf16/fp16 tensor cores): A100 312, H100/H200 989,
V100 125 (fp16) TFLOP/s; unknown devices print MFU n/a.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pretrain import synthetic_batch  # noqa: E402

MODELS: Dict[str, Dict[str, int]] = {
    # ERNIE 1.0 base (the seed's model): 12 layers x 768, 12 heads, vocab 18000.
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
}
VOCAB_SIZE = 18000
# Dense bf16/fp16 tensor-core peaks (TFLOP/s) by a substring of the device name, first match wins.
PEAK_TFLOPS = (("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("V100", 125.0))
# Tokens per batch by default (batch = tokens / seq: 128 x 128 and 32 x 512).
DEFAULT_TOKENS_PER_BATCH = 16384


def step_flops(num_params: int, num_layers: int, hidden_size: int, seq_len: int, tokens: int) -> float:
    """Training FLOPs of one step: 6 * N * T + 12 * L * H * S * T."""
    return 6.0 * num_params * tokens + 12.0 * num_layers * hidden_size * seq_len * tokens


def peak_tflops_for(device_name: str) -> Optional[float]:
    """The dense half-precision peak of a GPU by name, None if unknown."""
    for key, value in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


@dataclass
class Result:
    attention_impl: str
    precision: str
    seq_len: int
    batch_size: int
    seconds_per_step: float
    flops_per_step: float
    peak_tflops: Optional[float]

    @property
    def sequences_per_second(self) -> float:
        return self.batch_size / self.seconds_per_step

    @property
    def tokens_per_second(self) -> float:
        return self.batch_size * self.seq_len / self.seconds_per_step

    @property
    def achieved_tflops(self) -> float:
        return self.flops_per_step / self.seconds_per_step / 1e12

    @property
    def mfu(self) -> Optional[float]:
        return self.achieved_tflops / self.peak_tflops if self.peak_tflops else None

    def line(self) -> str:
        """One output line (scripts parse it: keep the format)."""
        mfu = f"{100 * self.mfu:.1f}%" if self.mfu is not None else "n/a"
        return (
            f"throughput attention={self.attention_impl} precision={self.precision} seq={self.seq_len} "
            f"batch={self.batch_size}: {self.sequences_per_second:.1f} seq/s, {self.tokens_per_second:.0f} tokens/s, "
            f"{self.achieved_tflops:.2f} TFLOP/s, MFU {mfu}"
        )


def _config(args, attention_impl: str, amp_dtype: str, seq_len: int, batch_size: int):
    from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig

    use_amp = amp_dtype != "none"
    return PretrainConfig(
        model=ModelConfig(attention_impl=attention_impl),
        optim=OptimConfig(
            max_lr=1e-4, min_lr=1e-5, warmup_steps=0, decay_steps=1000, weight_decay=0.01, grad_clip=1.0
        ),
        schedule=ScheduleConfig(global_batch_size=batch_size, micro_batch_size=batch_size, max_steps=1000),
        runtime=RuntimeConfig(
            device=args.device,
            use_amp=use_amp,
            amp_dtype=amp_dtype if use_amp else "float16",
            fp16_opt_level=args.fp16_opt_level,
        ),
    )


def _synchronize(device: str) -> None:
    import paddle

    if device != "cpu":
        paddle.device.synchronize()


def measure(args, attention_impl: str, amp_dtype: str, seq_len: int, peak: Optional[float]) -> Tuple[Result, int]:
    """Build the engine for one configuration and time its steps; (result, parameter count)."""
    import paddle
    from paddlenlp.transformers import ErnieConfig

    from ernie1.pretrain.engines.dygraph import DygraphEngine
    from ernie1.pretrain.runtime import Placement

    batch_size = args.batch_size or max(1, args.tokens_per_batch // seq_len)
    sizes = MODELS[args.model]
    ernie_config = ErnieConfig(
        vocab_size=args.vocab_size, hidden_act="relu", max_position_embeddings=max(513, seq_len + 1), **sizes
    )
    paddle.seed(1)
    with paddle.utils.unique_name.guard():
        engine = DygraphEngine(
            _config(args, attention_impl, amp_dtype, seq_len, batch_size),
            Placement(args.device, 1, 0, 0, 0, 1),
            None,
            ernie_config,
        )
        num_params = sum(int(np.prod(p.shape)) for p in engine.model.parameters())
        rng = np.random.RandomState(0)
        batches = [
            {
                key: paddle.to_tensor(value)
                for key, value in synthetic_batch(rng, batch_size, seq_len, args.vocab_size).items()
            }
            for _ in range(2)
        ]
        engine.set_training(True)
        for step in range(args.warmup_steps):
            engine.step([batches[step % 2]])
        _synchronize(args.device)
        start = time.perf_counter()
        for step in range(args.steps):
            engine.step([batches[step % 2]])
        _synchronize(args.device)
        elapsed = time.perf_counter() - start
    flops = step_flops(num_params, sizes["num_hidden_layers"], sizes["hidden_size"], seq_len, batch_size * seq_len)
    del engine, batches
    precision = amp_label(amp_dtype, args.fp16_opt_level)
    return Result(
        attention_impl, precision, seq_len, batch_size, elapsed / max(args.steps, 1), flops, peak
    ), num_params


def amp_label(amp_dtype: str, level: str) -> str:
    """fp32, or e.g. bfloat16-O2."""
    return "fp32" if amp_dtype == "none" else f"{amp_dtype}-{level}"


def device_name(device: str) -> str:
    """The GPU's name (cpu and the processor on CPU)."""
    import paddle

    if device == "cpu":
        return f"cpu ({platform.processor() or platform.machine()})"
    return str(paddle.device.cuda.get_device_name())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the configuration, the FLOP formula and one line per (attention, dtype, seq)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--model", default="base", choices=list(MODELS))
    parser.add_argument("--vocab_size", type=int, default=VOCAB_SIZE)
    parser.add_argument("--seq_len", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--attention_impl", nargs="+", default=["paddle", "sdpa"], choices=["paddle", "sdpa"])
    parser.add_argument(
        "--amp_dtype", nargs="+", default=["bfloat16", "float16"], choices=["bfloat16", "float16", "none"]
    )
    parser.add_argument("--fp16_opt_level", default="O2", choices=["O1", "O2"])
    parser.add_argument("--batch_size", type=int, default=0, help="0: --tokens_per_batch / seq")
    parser.add_argument("--tokens_per_batch", type=int, default=DEFAULT_TOKENS_PER_BATCH)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--peak_tflops", type=float, default=None, help="peak FLOP/s of the device in TFLOP/s")
    args = parser.parse_args(argv)

    import paddle

    if args.device == "gpu" and not paddle.is_compiled_with_cuda():
        print(
            "error: --device gpu: this Paddle build has no CUDA (use --device cpu for the smoke run)", file=sys.stderr
        )
        return 2
    paddle.set_device(args.device)
    name = device_name(args.device)
    peak = args.peak_tflops if args.peak_tflops else (peak_tflops_for(name) if args.device == "gpu" else None)
    sizes = MODELS[args.model]
    print(
        f"# device {name}, paddle {paddle.__version__}; ERNIE {sizes['num_hidden_layers']}x{sizes['hidden_size']} "
        f"vocab {args.vocab_size}, {args.steps} timed steps after {args.warmup_steps}; peak "
        f"{f'{peak:g} TFLOP/s' if peak else 'unknown (MFU n/a; pass --peak_tflops)'}"
    )
    printed_formula = False
    results: List[Result] = []
    for seq_len in args.seq_len:
        for amp_dtype in args.amp_dtype:
            for attention_impl in args.attention_impl:
                result, num_params = measure(args, attention_impl, amp_dtype, seq_len, peak)
                if not printed_formula:
                    print(
                        f"# FLOPs/step = 6*N*T + 12*L*H*S*T with N={num_params} parameters, "
                        f"L={sizes['num_hidden_layers']}, H={sizes['hidden_size']}, T=batch*S tokens"
                    )
                    printed_formula = True
                results.append(result)
                print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
