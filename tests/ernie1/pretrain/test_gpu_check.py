"""benchmarks/bench_gpu_throughput.py (the FLOP formula, a 2-step CPU smoke run and its line format) and
benchmarks/gpu_check.sh --dry_run end to end on CPU (slow: ~2 minutes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_gpu_throughput  # noqa: E402

LINE = re.compile(
    r"^throughput attention=(paddle|sdpa) precision=(fp32|float16-O[12]|bfloat16-O[12]) seq=(\d+) batch=(\d+): "
    r"([\d.]+) seq/s, (\d+) tokens/s, ([\d.]+) TFLOP/s, MFU (n/a|[\d.]+%)$"
)


def test_flop_formula_arithmetic():
    # ERNIE-base-like numbers: 6 * N * T + 12 * L * H * S * T.
    assert (
        bench_gpu_throughput.step_flops(100_000_000, 12, 768, 128, 16384)
        == 6 * 1e8 * 16384 + 12 * 12 * 768 * 128 * 16384
    )
    result = bench_gpu_throughput.Result("sdpa", "bfloat16-O2", 128, 128, 0.5, 989e12 * 0.25, 989.0)
    assert (result.sequences_per_second, result.tokens_per_second) == (256.0, 32768.0)
    assert result.mfu == pytest.approx(0.5)
    assert result.line() == (
        "throughput attention=sdpa precision=bfloat16-O2 seq=128 batch=128: 256.0 seq/s, 32768 tokens/s, "
        "494.50 TFLOP/s, MFU 50.0%"
    )
    assert bench_gpu_throughput.peak_tflops_for("NVIDIA H200") == 989.0
    assert bench_gpu_throughput.peak_tflops_for("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench_gpu_throughput.peak_tflops_for("Tesla V100-SXM2-32GB") == 125.0
    assert bench_gpu_throughput.peak_tflops_for("some other card") is None


def test_cpu_smoke_run_prints_the_formula_and_one_line_per_configuration(capsys):
    argv = ["--device", "cpu", "--model", "tiny", "--seq_len", "16", "--batch_size", "2", "--amp_dtype", "none"]
    assert bench_gpu_throughput.main(argv + ["--steps", "2", "--warmup_steps", "1", "--peak_tflops", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    formula = next(line for line in lines if line.startswith("# FLOPs/step"))
    params = int(re.search(r"N=(\d+) parameters", formula).group(1))
    assert "6*N*T + 12*L*H*S*T" in formula and "L=2, H=64" in formula
    rows = [LINE.match(line) for line in lines if line.startswith("throughput ")]
    assert [(row.group(1), row.group(2), row.group(3), row.group(4)) for row in rows] == [
        ("paddle", "fp32", "16", "2"),
        ("sdpa", "fp32", "16", "2"),
    ]
    for row in rows:
        seconds = 2 / float(row.group(5))
        # TFLOP/s = the formula's FLOPs of one step / seconds per step (printed rounded to 0.01).
        expected = bench_gpu_throughput.step_flops(params, 2, 64, 16, 32) / seconds / 1e12
        assert float(row.group(7)) == pytest.approx(expected, abs=0.006)
        # MFU against the given 1 TFLOP/s peak: the achieved TFLOP/s as a percentage.
        assert float(row.group(8)[:-1]) == pytest.approx(100 * expected, abs=0.06)


@pytest.mark.slow
def test_gpu_check_dry_run_passes_end_to_end_on_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work"), "BUDGET": "400"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry_run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line.split(" ", 2)[1] for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert checks == [
        "environment",
        "gpu-tests",
        "corpus",
        "dygraph-fp32",
        "static-fp32",
        "trainer-fp32",
        "throughput",
    ]
    assert all(line.startswith("PASS ") for line in lines if line.split(" ", 2)[1:2] and line[:4] in ("PASS", "FAIL"))
    for entry in ("dygraph", "static", "trainer"):
        line = next(line for line in lines if line.startswith(f"PASS {entry}-fp32"))
        assert "fp32, attention sdpa: resumed at step 10, step 20 loss" in line
    assert sum(1 for line in lines if LINE.match(line.strip())) == 4
    assert lines[-1].startswith("gpu_check: all checks passed in ")


def test_gpu_check_fails_fast_and_clearly_without_cuda(tmp_path):
    if _has_cuda():
        pytest.skip("this machine has a GPU")
    env = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work")}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    first_fail = next(line for line in done.stdout.splitlines() if line.startswith("FAIL"))
    assert first_fail.startswith("FAIL environment (")
    assert "has no CUDA or sees no GPU: install paddlepaddle-gpu matching the driver" in first_fail
    assert done.stdout.splitlines()[-1] == "gpu_check: the environment check failed; nothing else can run"


def _has_cuda() -> bool:
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
