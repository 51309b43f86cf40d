"""run_pretrain_static.py end to end on the tiny corpus (CPU, PIR): training, exact resume, conversion, errors."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from ernie1.common.errors import run_cli
from ernie1.pretrain.metrics_logger import read_metrics
from run_pretrain_static import main
from tests.ernie1.pretrain.helpers import tiny_argv
from tests.support import launch_cpu_ranks

REPO = Path(__file__).resolve().parent.parent
STRAIGHT_STEPS = 6


def static_params(checkpoint_dir: Path) -> dict:
    with open(checkpoint_dir / "static_vars.pdparams", "rb") as handle:
        return pickle.load(handle)


def run_static(argv) -> int:
    assert paddle.in_dynamic_mode()
    code = run_cli(main, argv)
    # The entry point must hand Paddle back in dygraph mode (tests and callers share the process).
    assert paddle.in_dynamic_mode()
    return code


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, tiny_prefix, vocab_path):
    """Six steps straight, snapshots at 3 and 6, evaluation every 2 steps."""
    output_dir = tmp_path_factory.mktemp("static_straight")
    argv = tiny_argv(
        tiny_prefix, str(output_dir), str(vocab_path), max_steps=STRAIGHT_STEPS, save_steps=3, eval_freq=2
    )
    assert run_static(argv) == 0
    return output_dir, argv


def test_static_run_lowers_the_mlm_loss(tmp_path, tiny_prefix, vocab_path):
    output_dir = tmp_path / "out"
    # A zero MLM bias (not the default prior, tests/ernie1/pretrain/test_mlm_prior.py): the loss starts at ln(V).
    argv = tiny_argv(
        tiny_prefix, str(output_dir), str(vocab_path), max_steps=12, eval_freq=6, max_lr="1e-2", mlm_bias_init="zeros"
    )
    assert run_static(argv) == 0
    train = read_metrics(str(output_dir), "train")
    assert [record["step"] for record in train] == list(range(1, 13))
    lm_losses = [record["lm_loss"] for record in train]
    assert all(np.isfinite(lm_losses))
    # From ~ln(21128) = 9.96 at init; 12 steps at lr 1e-2 bring the mean of the last three clearly lower.
    assert lm_losses[0] > 9.5
    assert np.mean(lm_losses[-3:]) < lm_losses[0] - 0.5
    valid = read_metrics(str(output_dir), "valid")
    assert [record["step"] for record in valid] == [6, 12]
    assert valid[1]["lm_loss"] < valid[0]["lm_loss"]
    assert len(read_metrics(str(output_dir), "test")) == 1


def test_checkpoints_use_the_shared_layout_with_static_files(straight_run):
    output_dir, _ = straight_run
    assert sorted(p.name for p in output_dir.glob("model_*")) == ["model_3", "model_6"]
    files = {p.name for p in (output_dir / "model_6").iterdir()}
    assert {
        "static_vars.pdparams",
        "static_vars.pdopt",
        "static_vars.json",
        "static_name_map.json",
        "model_config.json",
        "vocab.txt",
        "config.yml",
        "rng_state.pdparams",
        "COMPLETE",
    } <= files
    assert "added_tokens.json" not in files
    meta = yaml.safe_load((output_dir / "model_6" / "config.yml").read_text())
    assert (meta["global_step"], meta["global_batch_size"], meta["consumed_samples"]) == (6, 4, 24)
    assert meta["model_name"] == "ernie-1.0"


def test_resume_from_half_way_is_bit_identical_to_the_straight_run(straight_run, tmp_path):
    """N steps straight vs N/2, stop, resume: the strongest equality there is, bit-identical losses and weights.

    Single process on CPU: the kernels are deterministic, the data order is derived from consumed_samples and the
    dropout RNG state is saved with the checkpoint, so nothing is allowed to differ.
    """
    straight_dir, argv = straight_run
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    # The step-3 snapshot is exactly what a run stopped after step 3 leaves as model_last.
    shutil.copytree(straight_dir / "model_3", resumed_dir / "model_last")
    resumed_argv = [str(resumed_dir) if value == str(straight_dir) else value for value in argv]
    assert run_static(resumed_argv) == 0

    straight_train = read_metrics(str(straight_dir), "train")
    resumed_train = read_metrics(str(resumed_dir), "train")
    assert [record["step"] for record in resumed_train] == [4, 5, 6]
    for key in ("loss", "lm_loss", "sop_loss", "learning_rate"):
        assert [record[key] for record in resumed_train] == [record[key] for record in straight_train[3:]]
    # Evaluation continues where the straight run's stream was at step 4 (§18.3).
    straight_valid = read_metrics(str(straight_dir), "valid")
    assert [record["step"] for record in straight_valid] == [2, 4, 6]
    assert read_metrics(str(resumed_dir), "valid") == straight_valid[1:]
    assert read_metrics(str(resumed_dir), "test") == read_metrics(str(straight_dir), "test")

    final_straight = static_params(straight_dir / "model_6")
    final_resumed = static_params(resumed_dir / "model_6")
    assert sorted(final_straight) == sorted(final_resumed)
    for name, value in final_straight.items():
        np.testing.assert_array_equal(final_resumed[name], value, err_msg=name)


def test_converted_run_checkpoint_loads_in_dygraph_with_identical_weights(straight_run, tmp_path):
    from paddlenlp.transformers import ErnieForPretraining

    from converter.params_static_to_dygraph import main as convert_main
    from ernie1.pretrain.static_checkpoint import read_name_map

    checkpoint_dir = straight_run[0] / "model_6"
    output_dir = tmp_path / "dygraph"
    assert convert_main(["--path", str(checkpoint_dir), "--output_path", str(output_dir)]) == 0
    model = ErnieForPretraining.from_pretrained(str(output_dir))
    params, name_map = static_params(checkpoint_dir), read_name_map(str(checkpoint_dir))
    state = model.state_dict()
    assert sorted(state) == sorted(name_map)
    for key, static_name in name_map.items():
        np.testing.assert_array_equal(state[key].numpy(), params[static_name], err_msg=key)


def cli_error(argv, capsys) -> str:
    assert run_static(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_arguments_give_one_line_errors(tmp_path, tiny_prefix, vocab_path, capsys):
    vocab = str(vocab_path)
    output_dir = tmp_path / "out"
    assert cli_error(["--output_dir", str(output_dir)], capsys) == (
        "error: the following arguments are required: --input_dir"
    )
    assert cli_error(tiny_argv(tiny_prefix, str(output_dir), vocab, max_seq_len=256), capsys) == (
        "error: --max_seq_len 256 exceeds the model's max_position_embeddings 128"
    )
    assert cli_error(tiny_argv(tiny_prefix, str(output_dir), vocab, continue_training="true"), capsys) == (
        "error: --continue_training needs trained weights: --model_name_or_path ernie-1.0 is a built-in config "
        "(random init, no download); pass a checkpoint directory instead"
    )
    assert cli_error(tiny_argv(tiny_prefix, str(output_dir), vocab, use_sharding="true"), capsys) == (
        "error: --use_sharding true: the static script is data parallel only; leave it false"
    )
    assert cli_error(tiny_argv(tiny_prefix, str(output_dir), vocab, pack_samples="true"), capsys) == (
        "error: --pack_samples true: packing is implemented for run_pretrain.py only; leave it false"
    )
    # A dygraph checkpoint in --output_dir cannot be resumed by the static script.
    dygraph_last = output_dir / "model_last"
    dygraph_last.mkdir(parents=True)
    (dygraph_last / "model_state.pdparams").write_bytes(b"")
    (dygraph_last / "config.yml").write_text("global_step: 2\nglobal_batch_size: 4\nconsumed_samples: 8\n")
    (dygraph_last / "COMPLETE").write_text("ok\n")
    assert cli_error(tiny_argv(tiny_prefix, str(output_dir), vocab), capsys) == (
        f"error: {dygraph_last}: not a static-graph checkpoint (written by run_pretrain.py?); resume it with the "
        "same script or use a new --output_dir"
    )


def test_resume_with_a_different_global_batch_is_refused(straight_run, tmp_path, capsys):
    straight_dir, argv = straight_run
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(straight_dir / "model_3", resumed_dir / "model_last")
    resumed_argv = [str(resumed_dir) if value == str(straight_dir) else value for value in argv]
    message = cli_error(resumed_argv + ["--global_batch_size", "8"], capsys)
    assert message.startswith(
        f"error: {resumed_dir / 'model_last'}: cannot resume: global_batch_size changed (4 -> 8)"
    )


LAUNCHED_ENTRY = """
import sys
import pytest
from ernie1.common.errors import run_cli
from run_pretrain_static import main
sys.exit(run_cli(main))
"""


@pytest.mark.slow
def test_cpu_data_parallel_two_processes(tmp_path, tiny_prefix, vocab_path):
    """paddle.distributed.launch, 2 CPU ranks with gloo all_reduce of every gradient: trains, logs, saves."""
    output_dir = tmp_path / "dp"
    argv = tiny_argv(
        tiny_prefix,
        str(output_dir),
        str(vocab_path),
        max_steps=3,
        save_steps=3,
        eval_freq=3,
        eval_iters=1,
        micro_batch_size=2,
        global_batch_size=8,
    )
    # The entry installs the in-process data stand-in while data_tools lacks its dataset modules (else a no-op).
    entry = tmp_path / "launched_entry.py"
    entry.write_text(LAUNCHED_ENTRY)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = launch_cpu_ranks([str(entry), *argv], cwd=tmp_path, log_dir=tmp_path / "log", env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    train = read_metrics(str(output_dir), "train")
    assert [record["step"] for record in train] == [1, 2, 3]
    assert all(np.isfinite(record["loss"]) for record in train)
    meta = yaml.safe_load((output_dir / "model_3" / "config.yml").read_text())
    # 2 ranks x micro 2 x 2 accumulation steps = global batch 8.
    assert (meta["global_step"], meta["global_batch_size"], meta["consumed_samples"]) == (3, 8, 24)
    assert (output_dir / "model_3" / "COMPLETE").is_file()


def test_without_binary_head_trains_mlm_only_and_converts(tmp_path, tiny_prefix, vocab_path):
    from paddlenlp.transformers import ErnieForMaskedLM

    from converter.params_static_to_dygraph import main as convert_main

    output_dir = tmp_path / "mlm"
    argv = tiny_argv(tiny_prefix, str(output_dir), str(vocab_path), max_steps=2, save_steps=2, eval_freq=0)
    assert run_static(argv + ["--binary_head", "false"]) == 0
    train = read_metrics(str(output_dir), "train")
    assert [record["sop_loss"] for record in train] == [0.0, 0.0]
    assert all(record["loss"] == record["lm_loss"] for record in train)
    converted = tmp_path / "converted"
    assert convert_main(["--path", str(output_dir / "model_2"), "--output_path", str(converted)]) == 0
    state = paddle.load(str(converted / "model_state.pdparams"))
    assert not any(key.startswith("cls.seq_relationship") for key in state)
    model = ErnieForMaskedLM.from_pretrained(str(converted))
    np.testing.assert_array_equal(
        model.cls.predictions.decoder_bias.numpy(), state["cls.predictions.decoder_bias"].numpy()
    )


def test_continue_training_from_static_or_converted_weights_starts_from_them(
    straight_run, tmp_path, tiny_prefix, vocab_path
):
    from converter.params_static_to_dygraph import main as convert_main

    straight_dir, _ = straight_run
    converted = tmp_path / "converted"
    assert convert_main(["--path", str(straight_dir / "model_6"), "--output_path", str(converted)]) == 0
    first_losses = {}
    for source in (straight_dir / "model_6", converted):
        output_dir = tmp_path / f"continue_{source.name}"
        argv = tiny_argv(
            tiny_prefix,
            str(output_dir),
            str(vocab_path),
            max_steps=1,
            eval_freq=0,
            model_name_or_path=str(source),
            continue_training="true",
        )
        assert run_static(argv) == 0
        first_losses[source.name] = read_metrics(str(output_dir), "train")[0]["loss"]
    # The same weights through either loader give the same first step, and not a fresh model's (~10.7).
    assert first_losses["model_6"] == first_losses["converted"]
    assert first_losses["model_6"] < read_metrics(str(straight_dir), "train")[0]["loss"]


FAKE_PYTHON = """#!/usr/bin/env bash
# Records the launch command instead of running it; helper commands (python -c / -m data_tools...) really run.
if [ "$1" = "-c" ] || {{ [ "$1" = "-m" ] && [ "$2" != "paddle.distributed.launch" ]; }}; then
  exec {python} "$@"
fi
printf '%s\\n' "$@" > {record}
"""


def launcher_argv(tmp_path, env_overrides, *extra) -> list:
    """Run run_gb512_s1m_static.sh with a recording stand-in for python; returns the argv it would have run."""
    record = tmp_path / "argv.txt"
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable, record=record))
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), **env_overrides)
    subprocess.run(["bash", str(REPO / "run_gb512_s1m_static.sh"), *extra], env=env, check=True, timeout=60)
    return record.read_text().splitlines()


def test_launcher_gpu_recipe_parses_with_the_shared_flags(tmp_path):
    from args import parse_pretraining_args

    argv = launcher_argv(tmp_path, {"GPUS": "0,1", "OUTPUT_DIR": str(tmp_path / "out")}, "--max_steps", "77")
    assert argv[:6] == ["-u", "-m", "paddle.distributed.launch", "--gpus", "0,1", "--log_dir"]
    script = argv.index("run_pretrain_static.py")
    config = parse_pretraining_args(argv[script + 1 :], world_size=2)
    # The original's recipe, with the data-parallel degree following GPUS and "$@" forwarded last.
    assert (config.schedule.global_batch_size, config.schedule.micro_batch_size) == (512, 64)
    assert config.schedule.accumulate_steps == 4
    assert config.schedule.max_steps == 77
    assert (config.optim.max_lr, config.optim.min_lr, config.optim.decay_steps) == (1e-4, 1e-5, 990000)
    assert (config.runtime.device, config.runtime.use_amp, config.data.max_seq_length) == ("gpu", True, 512)
    assert config.model.model_name_or_path == "ernie-1.0-base-zh"


def test_launcher_smoke_mode_runs_on_cpu_with_the_tiny_model(tmp_path, tiny_prefix):
    from args import parse_pretraining_args

    argv = launcher_argv(tmp_path, {"SMOKE": "1", "INPUT_DIR": tiny_prefix, "OUTPUT_DIR": str(tmp_path / "o")})
    assert argv[0] == "run_pretrain_static.py"
    config = parse_pretraining_args(argv[1:], world_size=1)
    assert (config.runtime.device, config.schedule.max_steps, config.data.input_dir) == ("cpu", 20, tiny_prefix)
    assert config.model.model_config.startswith("hidden_size=64,num_hidden_layers=2")
