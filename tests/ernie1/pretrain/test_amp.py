"""AMP decisions: loss scaling for float16 only, fp32 master weights under O2, fp32 on CPU with a note; the flags of
the three entry points; GPU-only runs of each AMP mode (pytest -m gpu)."""

from __future__ import annotations

import json
import logging
import math

import paddle
import pytest

import run_pretrain
import run_pretrain_static
import run_pretrain_trainer
from args import parse_pretraining_args
from ernie1.common.errors import run_cli
from ernie1.pretrain.amp import FP32, AmpPlan, amp_plan, resolve_amp_plan
from ernie1.pretrain.config import RuntimeConfig
from ernie1.pretrain.engines.dygraph import apply_amp
from ernie1.pretrain.engines.static_program import _loss_scaler
from ernie1.pretrain.metrics_logger import read_metrics
from ernie1.pretrain.trainer.arguments import parse_trainer_args, to_pretrain_config
from tests.ernie1.pretrain.helpers import tiny_argv, trainer_argv


@pytest.mark.parametrize(
    "dtype,level,expected",
    [
        ("float16", "O1", AmpPlan(True, "float16", "O1", loss_scaling=True, master_weights=False)),
        ("float16", "O2", AmpPlan(True, "float16", "O2", loss_scaling=True, master_weights=True)),
        ("bfloat16", "O1", AmpPlan(True, "bfloat16", "O1", loss_scaling=False, master_weights=False)),
        ("bfloat16", "O2", AmpPlan(True, "bfloat16", "O2", loss_scaling=False, master_weights=True)),
    ],
)
def test_loss_scaling_for_float16_only_and_master_weights_under_o2(dtype, level, expected):
    assert amp_plan(True, dtype, level, "gpu") == expected
    assert amp_plan(True, dtype, level, "gpu:3") == expected
    assert amp_plan(True, dtype, level, "cpu") == FP32
    assert amp_plan(False, dtype, level, "gpu") == FP32


def test_plan_descriptions():
    assert FP32.describe() == "fp32"
    assert amp_plan(True, "bfloat16", "O2", "gpu").describe() == "bfloat16 O2 (no loss scaling, fp32 master weights)"
    assert amp_plan(True, "float16", "O1", "gpu").describe() == "float16 O1 (dynamic loss scaling)"


def test_on_cpu_amp_is_a_note_and_fp32(caplog):
    with caplog.at_level(logging.WARNING, logger="ernie1"):
        plan = resolve_amp_plan(RuntimeConfig(device="cpu", use_amp=True, amp_dtype="bfloat16"), "cpu")
    assert plan == FP32
    assert [record.getMessage() for record in caplog.records] == [
        "--use_amp true has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32"
    ]


@pytest.mark.parametrize("dtype,has_scaler", [("float16", True), ("bfloat16", False)])
def test_both_engines_build_a_loss_scaler_for_float16_only(dtype, has_scaler):
    # O1 leaves the model and optimizer as they are, so the decision can be built on CPU.
    plan = amp_plan(True, dtype, "O1", "gpu")
    model = paddle.nn.Linear(2, 2)
    optimizer = paddle.optimizer.AdamW(parameters=model.parameters())
    same_model, same_optimizer, scaler = apply_amp(plan, model, optimizer, 1024.0)
    assert (same_model, same_optimizer) == (model, optimizer)
    assert isinstance(scaler, paddle.amp.GradScaler) is has_scaler
    assert isinstance(_loss_scaler(plan, 1024.0), paddle.amp.GradScaler) is has_scaler
    assert apply_amp(FP32, model, optimizer, 1024.0)[2] is None and _loss_scaler(FP32, 1024.0) is None


def test_amp_dtype_flag_of_the_argparse_scripts(capsys):
    base = ["--input_dir", "data", "--output_dir", "out", "--device", "cpu"]
    assert parse_pretraining_args(base, world_size=1).runtime.amp_dtype == "float16"
    config = parse_pretraining_args(base + ["--use_amp", "true", "--amp_dtype", "bfloat16"], world_size=1)
    assert (config.runtime.use_amp, config.runtime.amp_dtype, config.runtime.fp16_opt_level) == (
        True,
        "bfloat16",
        "O2",
    )
    assert run_cli(run_pretrain.main, base + ["--amp_dtype", "bf16"]) == 2
    assert capsys.readouterr().err == (
        "error: argument --amp_dtype: invalid choice: 'bf16' (choose from 'float16', 'bfloat16')\n"
    )


@pytest.mark.parametrize("switch,dtype", [("--fp16", "float16"), ("--bf16", "bfloat16")])
def test_trainer_fp16_and_bf16_switches_are_use_amp_with_amp_dtype(tmp_path, switch, dtype):
    argv = trainer_argv("data", str(tmp_path), "vocab.txt", switch, "--fp16_opt_level", "O2")
    config = to_pretrain_config(*parse_trainer_args(argv))
    assert (config.runtime.use_amp, config.runtime.amp_dtype, config.runtime.fp16_opt_level) == (True, dtype, "O2")


def test_trainer_amp_on_cpu_is_a_note_and_trains_in_fp32(tmp_path, tiny_prefix, vocab_path, capsys):
    out = tmp_path / "out"
    argv = trainer_argv(tiny_prefix, str(out), str(vocab_path), "--bf16", do=("train",), max_steps=1, save_steps=1)
    assert run_pretrain_trainer.main(argv) == 0
    assert "--bf16 has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32" in capsys.readouterr().out
    [start] = read_metrics(str(out), "start")
    assert start["precision"] == "fp32"


# GPU only (pytest -m gpu; benchmarks/gpu_check.sh runs them): each AMP mode, 3 steps, each entry point.
AMP_MODES = [("float16", "O1"), ("float16", "O2"), ("bfloat16", "O2")]


def _gpu_argv(argv):
    return [value if previous != "--device" else "gpu" for previous, value in zip([None] + argv[:-1], argv)]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,level", AMP_MODES)
@pytest.mark.parametrize("entry", [run_pretrain, run_pretrain_static], ids=["dygraph", "static"])
def test_gpu_argparse_entry_points_train_with_each_amp_mode(entry, dtype, level, tmp_path, tiny_prefix, vocab_path):
    out = tmp_path / "out"
    flags = dict(max_steps=3, eval_freq=3, checkpoint_steps=3, use_amp="true", amp_dtype=dtype, fp16_opt_level=level)
    assert entry.main(_gpu_argv(tiny_argv(tiny_prefix, str(out), str(vocab_path), **flags))) == 0
    losses = [record["loss"] for record in read_metrics(str(out))]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    [start] = read_metrics(str(out), "start")
    assert start["precision"].startswith(f"{dtype} {level}")
    if entry is run_pretrain:
        assert (out / "model_last" / "scaler.pdparams").exists() is (dtype == "float16")
    [valid] = read_metrics(str(out), "valid")
    assert 0.0 <= valid["masked_accuracy"] <= 1.0 and math.isfinite(valid["lm_loss"])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,level", AMP_MODES)
def test_gpu_trainer_trains_with_each_amp_mode(dtype, level, tmp_path, tiny_prefix, vocab_path):
    out = tmp_path / "out"
    switch = "--bf16" if dtype == "bfloat16" else "--fp16"
    argv = trainer_argv(tiny_prefix, str(out), str(vocab_path), switch, "--fp16_opt_level", level, max_steps=3)
    assert run_pretrain_trainer.main(_gpu_argv(argv)) == 0
    losses = [record["loss"] for record in read_metrics(str(out))]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
