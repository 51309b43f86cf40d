"""run_pretrain_trainer.py end to end on CPU: a 2-layer hidden-64 model on the tiny real-text corpus, seq 64."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

import run_pretrain_trainer
from ernie1.common.errors import run_cli
from ernie1.pretrain.config import ScheduleConfig
from ernie1.pretrain.metrics_logger import read_metrics
from ernie1.pretrain.trainer.arguments import parse_trainer_args, to_pretrain_config
from ernie1.pretrain.trainer.sampler import ResumableBatchSampler
from tests.ernie1.pretrain.helpers import trainer_argv
from tests.support import launch_cpu_ranks

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus_dir(tiny_prefix):
    return str(Path(tiny_prefix).parent)


def records(output_dir, split="train"):
    return [(r["step"], r["loss"], r["lm_loss"], r["sop_loss"]) for r in read_metrics(str(output_dir), split)]


def test_trainer_lowers_the_mlm_loss_and_writes_checkpoints(tmp_path, corpus_dir, vocab_path):
    out = tmp_path / "out"
    argv = trainer_argv(
        corpus_dir,
        str(out),
        str(vocab_path),
        max_steps=30,
        eval_steps=15,
        save_steps=15,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        # From a zero MLM bias the first steps' drop (token frequencies) is large and certain; the default prior
        # starts at the unigram loss instead (tests/ernie1/pretrain/test_mlm_prior.py).
        mlm_bias_init="zeros",
    )
    assert run_pretrain_trainer.main(argv) == 0
    lm = [r[2] for r in records(out)]
    assert len(lm) == 30
    assert sum(lm[-5:]) / 5 < sum(lm[:5]) / 5 - 1.0, lm
    assert [r[0] for r in records(out, "valid")] == [15, 30]
    assert [r[0] for r in records(out, "test")] == [30]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-15", "checkpoint-30"]
    for directory in (out, out / "checkpoint-15"):
        # The `##` CJK extension stays out of the saved tokenizer (PaddleNLP #3671).
        assert (directory / "vocab.txt").is_file() and not (directory / "added_tokens.json").exists()
        assert "added_tokens_decoder" not in json.loads((directory / "tokenizer_config.json").read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 30
    # The Trainer's own loss (lm + sop) agrees with the criterion's parts.
    trainer_losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert trainer_losses == pytest.approx([r[1] for r in records(out)], abs=1e-6)
    assert [r[1] for r in records(out)] == pytest.approx([r[2] + r[3] for r in records(out)], abs=1e-5)


def test_resume_from_half_way_matches_the_straight_run_exactly(tmp_path, corpus_dir, vocab_path):
    """The strongest equality the Trainer allows: with dropout on, a run resumed from checkpoint-4 repeats the straight
    run's steps 5-8 bit for bit (train, eval and test losses, final weights). The Trainer restores the optimizer,
    scheduler and RNG states; our sampler is positioned once at 4 x 4 consumed samples. Logging every step matters:
    the Trainer does not checkpoint its running loss sum, so a log interval spanning the checkpoint cannot match."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_pretrain_trainer.main(trainer_argv(corpus_dir, str(straight), str(vocab_path))) == 0
    # A run stopped after step 4 left exactly this checkpoint behind; it is picked up without any flag.
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-4", resumed / "checkpoint-4")
    assert run_pretrain_trainer.main(trainer_argv(corpus_dir, str(resumed), str(vocab_path))) == 0
    assert records(resumed) == records(straight)[4:]
    assert records(resumed, "valid") == [r for r in records(straight, "valid") if r[0] > 4]
    assert records(resumed, "test") == records(straight, "test")
    final_straight = paddle.load(str(straight / "model_state.pdparams"))
    final_resumed = paddle.load(str(resumed / "model_state.pdparams"))
    assert sorted(final_straight) == sorted(final_resumed)
    for key, value in final_straight.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(final_resumed[key]), err_msg=key)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--bogus", "1"], "error: unrecognized arguments: ['--bogus', '1']"),
        (
            ["--min_learning_rate", "1", "--learning_rate", "0.1"],
            "error: --min_learning_rate 1.0 must not exceed --learning_rate 0.1",
        ),
        (["--lr_decay_style", "poly"], "error: --lr_decay_style must be one of linear, cosine, none, got 'poly'"),
        (["--max_seq_length", "4"], "error: --max_seq_length must be at least 8, got 4"),
        (["--max_seq_length", "256"], "error: --max_seq_length 256 exceeds the model's max_position_embeddings 128"),
        (
            ["--max_steps", "-1"],
            "error: --max_steps must be positive, got -1 (the datasets are sized from it; epochs are not used)",
        ),
        (["--model_type", "bert"], "error: --model_type bert: only ernie is supported"),
        (
            ["--resume_from_checkpoint", "/no/such"],
            "error: --resume_from_checkpoint /no/such: not a Trainer checkpoint (no trainer_state.json there)",
        ),
        (["--input_dir", "/no/such/dir"], "error: --input_dir /no/such/dir: neither a directory nor a data prefix"),
        (
            ["--tokenizer_name_or_path", "/no/such/vocab.txt"],
            "error: --tokenizer_name_or_path /no/such/vocab.txt: vocabulary file not found",
        ),
        (
            ["--continue_training", "true"],
            "error: --continue_training needs trained weights: --model_name_or_path ernie-1.0 is a built-in config",
        ),
        (["--fp16", "true", "--bf16", "true"], "error: At most one of fp16 and bf16 can be True, but not both"),
        (
            ["--pack_samples", "true"],
            "error: --pack_samples true: packing is implemented for run_pretrain.py only; leave it false",
        ),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path, corpus_dir, vocab_path, extra, message, capsys):
    argv = trainer_argv(corpus_dir, str(tmp_path / "o"), str(vocab_path), *extra)
    assert run_cli(run_pretrain_trainer.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_nothing_to_do_is_an_error(tmp_path, corpus_dir, vocab_path, capsys):
    argv = [a for a in trainer_argv(corpus_dir, str(tmp_path), str(vocab_path)) if not a.startswith("--do_")]
    assert run_cli(run_pretrain_trainer.main, argv) == 2
    assert capsys.readouterr().err == "error: nothing to do: pass --do_train (and/or --do_eval, --do_predict)\n"


def test_sampler_is_positioned_once_by_the_trainer():
    sampler = ResumableBatchSampler(num_samples=40, micro_batch_size=2, data_rank=1, data_world_size=2)
    assert len(sampler) == 10 and next(iter(sampler)) == [2, 3]
    # What Trainer._inner_training_loop does on resume (step 3 x global batch 4), instead of dropping batches.
    sampler.set_epoch(consumed_samples=12)
    assert list(sampler) == [[14, 15], [18, 19], [22, 23], [26, 27], [30, 31], [34, 35], [38, 39]]
    # The Trainer's epoch bookkeeping reads the length of the whole epoch, not of the remainder.
    assert len(sampler) == 10


def test_sample_counts_and_valid_offset():
    """The Trainer's schedule: eval batches counted in micro-batches of --per_device_eval_batch_size."""
    common = dict(
        global_batch_size=16,
        micro_batch_size=4,
        accumulate_steps=2,
        data_world_size=2,
        max_steps=100,
        eval_iters=5,
        eval_batch_size=8,
        eval_iters_in_global_batches=False,
    )
    schedule = ScheduleConfig(eval_freq=30, **common)
    # train: global batch x steps; valid: eval batch x world x eval_iters per evaluation (3); test: 10 evaluations.
    assert schedule.requested_samples() == (1600, 8 * 2 * 5 * 3, 8 * 2 * 5 * 10)
    no_eval = ScheduleConfig(eval_freq=0, final_test=False, **common)
    assert no_eval.requested_samples() == (1600, 0, 0)
    # The evaluation at step 30 reads from 0, the one at 60 after one evaluation, a resumed one at 61+ after two
    # (the Trainer asks for the offset before the evaluation at its current step: global_step - 1).
    assert [schedule.valid_offset(max(0, step - 1)) for step in (0, 30, 60, 61, 90)] == [0, 0, 80, 160, 160]


def test_continue_training_loads_the_checkpoint_weights(tmp_path, corpus_dir, vocab_path):
    first, second = tmp_path / "first", tmp_path / "second"
    common = dict(max_steps=2, save_steps=2, eval_steps=2, eval_iters=1)
    assert run_pretrain_trainer.main(trainer_argv(corpus_dir, str(first), str(vocab_path), **common)) == 0
    # The original read an undeclared args.continue_training (REFERENCE §18.11). Evaluating the loaded weights at
    # step 0 reads the same valid batch as the first run's evaluation at step 2: the losses must be identical.
    argv = trainer_argv(
        corpus_dir,
        str(second),
        str(vocab_path),
        model_name_or_path=str(first / "checkpoint-2"),
        model_config=None,
        continue_training="true",
        eval_iters=1,
        do=("eval",),
    )
    assert run_pretrain_trainer.main(argv) == 0
    assert records(second, "valid") == [(0, *records(first, "valid")[0][1:])]


def test_resume_with_another_global_batch_is_refused(tmp_path, corpus_dir, vocab_path, capsys):
    out = tmp_path / "out"
    common = dict(max_steps=2, save_steps=2, eval_steps=2, eval_iters=1)
    assert run_pretrain_trainer.main(trainer_argv(corpus_dir, str(out), str(vocab_path), **common)) == 0
    capsys.readouterr()
    argv = trainer_argv(corpus_dir, str(out), str(vocab_path), per_device_train_batch_size=2, **common)
    assert run_cli(run_pretrain_trainer.main, argv) == 2
    assert capsys.readouterr().err == (
        f"error: {out / 'checkpoint-2'}: cannot resume: global_batch_size changed (4 -> 2); restore "
        "--per_device_train_batch_size / --gradient_accumulation_steps or use a new --output_dir\n"
    )


@pytest.mark.slow
def test_launcher_smoke_mode(tmp_path, corpus_dir):
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    env.update(
        SMOKE="1",
        INPUT_DIR=corpus_dir,
        OUTPUT_DIR=str(tmp_path / "smoke"),
        SPLIT="8,1,1",
        MAX_STEPS="4",
        SAVE_STEPS="2",
        EVAL_STEPS="2",
        LOGGING_STEPS="1",
        MAX_SEQ_LENGTH="64",
        PYTHON=sys.executable,
    )
    result = subprocess.run(
        ["bash", str(REPO / "run_gb512_s1m_trainer.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r[0] for r in records(tmp_path / "smoke")] == [1, 2, 3, 4]
    assert [r[0] for r in records(tmp_path / "smoke", "valid")] == [2, 4]
    assert sorted(p.name for p in (tmp_path / "smoke").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


ORIGINAL_TRAINER_SH = (
    "--model_type ernie --model_name_or_path ernie-1.0-base-zh --tokenizer_name_or_path ernie-1.0-base-zh "
    "--input_dir ./data --output_dir output/ernie-1.0-dp8-gb512 --split 949,50,1 --max_seq_length 512 "
    "--per_device_train_batch_size 64 --per_device_eval_batch_size 64 --fp16 --fp16_opt_level O2 "
    "--learning_rate 0.0001 --min_learning_rate 0.00001 --max_steps 1000000 --save_steps 50000 --weight_decay 0.01 "
    "--warmup_ratio 0.01 --max_grad_norm 1.0 --logging_steps 20 --dataloader_num_workers 4 --eval_steps 1000 "
    "--report_to visualdl --disable_tqdm true --do_train --device gpu"
)


def test_the_original_trainer_command_parses_into_the_typed_config():
    config = to_pretrain_config(*parse_trainer_args(ORIGINAL_TRAINER_SH.split()))
    schedule, optim = config.schedule, config.optim
    # Without --do_eval the original never evaluated, whatever --eval_steps said; the typed config says so.
    assert (schedule.global_batch_size, schedule.max_steps, schedule.eval_freq) == (64, 10**6, 0)
    assert (optim.max_lr, optim.min_lr, optim.warmup_steps, optim.decay_steps) == (1e-4, 1e-5, 10000, 10**6)
    assert (optim.weight_decay, optim.grad_clip, config.runtime.use_amp) == (0.01, 1.0, True)
    assert (config.data.max_seq_length, schedule.logging_freq) == (512, 20)


def test_launcher_gpu_command_forwards_overrides(tmp_path):
    """The 8-GPU recipe, with PYTHON replaced by a stub that prints the command it would have run."""
    stub = tmp_path / "python"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    env = dict(os.environ, PYTHON=str(stub), DEVICES="0,1", MAX_STEPS="1000")
    result = subprocess.run(
        ["bash", str(REPO / "run_gb512_s1m_trainer.sh"), "--decay_steps", "990"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert argv[:8] == [
        "-u",
        "-m",
        "paddle.distributed.launch",
        "--gpus",
        "0,1",
        "--log_dir",
        "output/ernie-1.0-dp8-gb512-trainer/log",
        "run_pretrain_trainer.py",
    ]
    flags = argv[8:]
    assert flags[flags.index("--max_steps") + 1] == "1000" and flags[-2:] == ["--decay_steps", "990"]
    config = to_pretrain_config(*parse_trainer_args(flags))
    assert (config.schedule.global_batch_size, config.optim.decay_steps, config.schedule.eval_freq) == (64, 990, 1000)


def _launch(args, env_extra=None):
    # paddle.distributed.launch treats any CUDA_VISIBLE_DEVICES (even empty) as "GPU job" and fails on a CPU build.
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_process_data_parallel_matches_one_process_with_accumulation(tmp_path, corpus_dir, vocab_path):
    """2 ranks x batch 2 and 1 rank x batch 2 x 2 accumulation steps read the same samples and average the same
    per-micro-batch losses, so every logged loss agrees up to float summation order."""
    common = dict(
        max_steps=4,
        per_device_train_batch_size=2,
        per_device_eval_batch_size=2,
        eval_steps=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    single, parallel = tmp_path / "single", tmp_path / "parallel"
    argv = trainer_argv(
        corpus_dir, str(single), str(vocab_path), gradient_accumulation_steps=2, eval_iters=2, **common
    )
    result = _launch(["run_pretrain_trainer.py", *argv])
    assert result.returncode == 0, result.stderr[-3000:]
    argv = trainer_argv(corpus_dir, str(parallel), str(vocab_path), eval_iters=1, do=("train", "eval"), **common)
    result = launch_cpu_ranks(["run_pretrain_trainer.py", *argv], cwd=REPO, log_dir=tmp_path / "log")
    assert result.returncode == 0, result.stderr[-3000:]
    for split in ("train", "valid"):
        expected, got = records(single, split), records(parallel, split)
        assert [r[0] for r in got] == [r[0] for r in expected]
        assert [r[1:] for r in got] == [pytest.approx(r[1:], rel=1e-5, abs=1e-5) for r in expected]
