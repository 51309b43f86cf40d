"""run_pretrain.py end to end on CPU with a 2-layer hidden-64 model on the tiny real-text corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_pretrain
from ernie1.common.errors import run_cli
from ernie1.data import collate
from ernie1.pretrain.checkpoint import find_resume_checkpoint, read_meta
from ernie1.pretrain.metrics_logger import read_metrics
from tests.ernie1.pretrain.helpers import TINY_MODEL, tiny_argv
from tests.support import launch_cpu_ranks

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus_dir(tiny_prefix):
    return str(Path(tiny_prefix).parent)


def losses(output_dir, split="train"):
    return [(record["step"], record["loss"]) for record in read_metrics(output_dir, split)]


def test_loss_goes_down_and_files_are_written(tmp_path, corpus_dir, vocab_path):
    out = tmp_path / "out"
    argv = tiny_argv(
        corpus_dir,
        str(out),
        str(vocab_path),
        max_steps=30,
        eval_freq=15,
        save_steps=15,
        checkpoint_steps=10,
        warmup_rate=0.1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        # From a zero MLM bias the first steps' drop (token frequencies) is large and certain; the default prior
        # starts at the unigram loss instead (tests/ernie1/pretrain/test_mlm_prior.py).
        mlm_bias_init="zeros",
    )
    assert run_pretrain.main(argv) == 0
    train = [loss for _, loss in losses(out)]
    assert len(train) == 30
    assert sum(train[-5:]) / 5 < sum(train[:5]) / 5 - 1.0, train
    assert [step for step, _ in losses(out, "valid")] == [15, 30]
    assert [step for step, _ in losses(out, "test")] == [30]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("model")) == [
        "model_15",
        "model_30",
        "model_last",
    ]
    assert read_meta(out / "model_last")["global_step"] == 30
    assert read_meta(out / "model_30") == {**read_meta(out / "model_last"), "global_step": 30}
    assert (out / "pretrain_config.json").is_file() and any((out / "runs").iterdir())


def test_resume_continues_bit_identically(tmp_path, corpus_dir, vocab_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = dict(max_steps=8, eval_freq=3, save_steps=4, checkpoint_steps=1000)
    assert run_pretrain.main(tiny_argv(corpus_dir, str(straight), str(vocab_path), **common)) == 0
    # A run stopped after step 4 left exactly this checkpoint behind as model_last.
    resumed.mkdir()
    shutil.copytree(straight / "model_4", resumed / "model_last")
    assert run_pretrain.main(tiny_argv(corpus_dir, str(resumed), str(vocab_path), **common)) == 0
    assert losses(resumed) == losses(straight)[4:]
    assert losses(resumed, "valid") == [record for record in losses(straight, "valid") if record[0] > 4]
    assert losses(resumed, "test") == losses(straight, "test")
    assert read_meta(resumed / "model_8")["consumed_samples"] == 8 * 4


def test_pack_samples_trains_as_unpacked_and_resumes(tmp_path, corpus_dir, vocab_path, capsys, monkeypatch):
    # max_seq_len 256 on the tiny corpus (short documents, sentences cut at 60 characters): samples pair up.
    model = TINY_MODEL.replace("max_position_embeddings=128", "max_position_embeddings=256")
    common = dict(max_seq_len=256, model_config=model, max_steps=6, eval_freq=3, save_steps=3)
    common.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    unpacked, packed, resumed = tmp_path / "unpacked", tmp_path / "packed", tmp_path / "resumed"
    assert run_pretrain.main(tiny_argv(corpus_dir, str(unpacked), str(vocab_path), **common)) == 0
    assert "precision: fp32\n" in capsys.readouterr().out
    rows_and_samples = []

    def counting_collate(samples, **kwargs):
        batch = pack_collate(samples, **kwargs)
        rows_and_samples.append((batch["input_ids"].shape[0], len(samples)))
        return batch

    pack_collate = collate.collate_packed_pretraining_batch
    monkeypatch.setattr(collate, "collate_packed_pretraining_batch", counting_collate)
    assert run_pretrain.main(tiny_argv(corpus_dir, str(packed), str(vocab_path), pack_samples="true", **common)) == 0
    assert "precision: fp32, pack_samples: true\n" in capsys.readouterr().out
    # Training batches only (evaluation stays unpacked; the loader reads ahead), and they did pack.
    assert len(rows_and_samples) >= 6 and all(samples == 4 for _, samples in rows_and_samples), rows_and_samples
    assert sum(rows for rows, _ in rows_and_samples[:6]) < 6 * 4, rows_and_samples
    # Same samples per step, same losses (up to float summation order), hence the same training.
    assert [step for step, _ in losses(packed)] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss in losses(packed)] == pytest.approx([loss for _, loss in losses(unpacked)], abs=1e-4)
    assert [loss for _, loss in losses(packed, "valid")] == pytest.approx(
        [loss for _, loss in losses(unpacked, "valid")], abs=1e-4
    )
    resumed.mkdir()
    shutil.copytree(packed / "model_3", resumed / "model_last")
    argv = tiny_argv(corpus_dir, str(resumed), str(vocab_path), pack_samples="true", **common)
    assert run_pretrain.main(argv) == 0
    assert losses(resumed) == losses(packed)[3:]
    assert read_meta(resumed / "model_6")["consumed_samples"] == read_meta(packed / "model_6")["consumed_samples"]


def test_resume_with_accumulation_and_checkpoint_between_log_steps(tmp_path, corpus_dir, vocab_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = dict(max_steps=6, micro_batch_size=2, global_batch_size=4, logging_freq=2, eval_freq=0, save_steps=3)
    assert run_pretrain.main(tiny_argv(corpus_dir, str(straight), str(vocab_path), **common)) == 0
    resumed.mkdir()
    shutil.copytree(straight / "model_3", resumed / "model_last")
    assert run_pretrain.main(tiny_argv(corpus_dir, str(resumed), str(vocab_path), **common)) == 0
    assert losses(resumed) == losses(straight)[1:]


@pytest.mark.parametrize(
    "change,message",
    [
        (
            dict(global_batch_size=8, micro_batch_size=2),
            "cannot resume: global_batch_size changed (4 -> 8); restore --global_batch_size",
        ),
        (
            dict(
                model_config="hidden_size=32,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128,"
                "max_position_embeddings=128"
            ),
            "cannot resume: model_config changed (hidden_size 64 -> 32); restore --model_config / --model_name_or_path",
        ),
    ],
)
def test_incompatible_resume_is_refused(tmp_path, corpus_dir, vocab_path, change, message, capsys):
    out = tmp_path / "out"
    assert (
        run_pretrain.main(
            tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=2, checkpoint_steps=2, eval_freq=0)
        )
        == 0
    )
    capsys.readouterr()
    assert run_cli(run_pretrain.main, tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=4, **change)) == 2
    err = capsys.readouterr().err
    assert err == f"error: {out / 'model_last'}: {message} or use a new --output_dir\n"


def test_changed_data_prefix_is_refused(tmp_path, tiny_prefix, vocab_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    for suffix in ("_ids.npy", "_idx.npz"):
        shutil.copy(tiny_prefix + suffix, other / f"renamed{suffix}")
    out = tmp_path / "out"
    argv = tiny_argv(
        str(Path(tiny_prefix).parent), str(out), str(vocab_path), max_steps=2, checkpoint_steps=2, eval_freq=0
    )
    assert run_pretrain.main(argv) == 0
    capsys.readouterr()
    assert run_cli(run_pretrain.main, tiny_argv(str(other), str(out), str(vocab_path), max_steps=4)) == 2
    assert capsys.readouterr().err == (
        f"error: {out / 'model_last'}: cannot resume: data_prefixes changed "
        '([[1.0, "tiny"]] -> [[1.0, "renamed"]]); restore --input_dir or use a new --output_dir\n'
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            dict(model_name_or_path="ernie-3.0-xbase"),
            "error: --model_name_or_path ernie-3.0-xbase: not a built-in config",
        ),
        (
            dict(tokenizer_name_or_path="/no/such/vocab.txt"),
            "error: --tokenizer_name_or_path /no/such/vocab.txt: vocabulary file not found",
        ),
        (dict(max_seq_len=256), "error: --max_seq_len 256 exceeds the model's max_position_embeddings 128"),
        (
            dict(continue_training="true"),
            "error: --continue_training needs trained weights: --model_name_or_path ernie-1.0 is a built-in config",
        ),
        (dict(input_dir="/no/such/dir"), "error: --input_dir /no/such/dir: neither a directory nor a data prefix"),
    ],
)
def test_bad_runs_fail_with_one_line(tmp_path, corpus_dir, vocab_path, overrides, message, capsys):
    assert run_cli(run_pretrain.main, tiny_argv(corpus_dir, str(tmp_path / "o"), str(vocab_path), **overrides)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_continue_training_from_a_checkpoint_dir(tmp_path, corpus_dir, vocab_path):
    first = tmp_path / "first"
    assert run_pretrain.main(tiny_argv(corpus_dir, str(first), str(vocab_path), max_steps=2, eval_freq=0)) == 0
    second = tmp_path / "second"
    argv = tiny_argv(
        corpus_dir,
        str(second),
        str(vocab_path),
        max_steps=2,
        eval_freq=0,
        model_name_or_path=str(first / "model_2"),
        continue_training="true",
    )
    argv = [a for a in argv]
    index = argv.index("--model_config")
    del argv[index : index + 2]
    assert run_pretrain.main(argv) == 0
    assert find_resume_checkpoint(str(second)) is None  # no model_last written (checkpoint_steps 1000)
    assert read_meta(second / "model_2")["model_name"] == str(first / "model_2")


def _launch_two_processes(argv, log_dir):
    result = launch_cpu_ranks(["run_pretrain.py", *argv], cwd=REPO, log_dir=log_dir)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_process_data_parallel_matches_one_process_with_accumulation_and_resumes(tmp_path, corpus_dir, vocab_path):
    common = dict(
        max_steps=4,
        micro_batch_size=2,
        global_batch_size=4,
        eval_freq=2,
        eval_iters=1,
        save_steps=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    single, parallel, resumed = tmp_path / "single", tmp_path / "parallel", tmp_path / "resumed"
    assert run_pretrain.main(tiny_argv(corpus_dir, str(single), str(vocab_path), **common)) == 0
    _launch_two_processes(tiny_argv(corpus_dir, str(parallel), str(vocab_path), **common), tmp_path / "log")
    for split in ("train", "valid", "test"):
        expected, got = losses(single, split), losses(parallel, split)
        assert [s for s, _ in got] == [s for s, _ in expected]
        assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=1e-5, abs=1e-5)
    # Both ranks resume from rank 0's step-2 checkpoint and continue exactly (no dropout).
    resumed.mkdir()
    shutil.copytree(parallel / "model_2", resumed / "model_last")
    _launch_two_processes(tiny_argv(corpus_dir, str(resumed), str(vocab_path), **common), tmp_path / "log2")
    assert losses(resumed) == losses(parallel)[2:]
    assert losses(resumed, "test") == losses(parallel, "test")


def test_recompute_gives_the_same_losses(tmp_path, corpus_dir, vocab_path):
    common = dict(max_steps=3, eval_freq=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    assert run_pretrain.main(tiny_argv(corpus_dir, str(tmp_path / "plain"), str(vocab_path), **common)) == 0
    argv = tiny_argv(corpus_dir, str(tmp_path / "recompute"), str(vocab_path), use_recompute="true", **common)
    assert run_pretrain.main(argv) == 0
    assert losses(tmp_path / "recompute") == pytest.approx(losses(tmp_path / "plain"), rel=1e-6)


def test_without_binary_head_trains_mlm_only(tmp_path, corpus_dir, vocab_path):
    out = tmp_path / "mlm"
    assert (
        run_pretrain.main(
            tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=2, eval_freq=0, binary_head="false")
        )
        == 0
    )
    records = read_metrics(str(out))
    assert [record["sop_loss"] for record in records] == [0.0, 0.0]
    assert all(record["loss"] == record["lm_loss"] for record in records)


def test_amp_on_cpu_says_it_stays_fp32(tmp_path, corpus_dir, vocab_path, capsys):
    argv = tiny_argv(corpus_dir, str(tmp_path / "amp"), str(vocab_path), max_steps=1, eval_freq=0, use_amp="true")
    assert run_pretrain.main(argv) == 0
    assert (
        "--use_amp true has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32"
        in capsys.readouterr().out
    )
    assert not (tmp_path / "amp" / "model_1" / "scaler.pdparams").exists()


@pytest.mark.slow
def test_resume_after_kill_9_matches_the_uninterrupted_run(tmp_path, corpus_dir, vocab_path):
    common = dict(max_steps=10, checkpoint_steps=1, eval_freq=5)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_pretrain.main(tiny_argv(corpus_dir, str(straight), str(vocab_path), **common)) == 0
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    process = subprocess.Popen(
        [sys.executable, "run_pretrain.py", *tiny_argv(corpus_dir, str(killed), str(vocab_path), **common)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        found = find_resume_checkpoint(str(killed))
        if found is not None and read_meta(found)["global_step"] >= 3:
            break
        time.sleep(0.02)
    process.kill()
    process.wait()
    step = read_meta(find_resume_checkpoint(str(killed)))["global_step"]
    assert 3 <= step < 10, step  # killed mid-run, after at least three checkpoints
    logged_before = len(read_metrics(str(killed)))
    assert run_pretrain.main(tiny_argv(corpus_dir, str(killed), str(vocab_path), **common)) == 0
    after = [record for record in read_metrics(str(killed))[logged_before:] if record["split"] == "train"]
    assert [(record["step"], record["loss"]) for record in after] == losses(straight)[step:]
