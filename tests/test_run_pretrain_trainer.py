"""run_pretrain_trainer.py end to end on CPU: a 2-layer hidden-64 model on the tiny real-text corpus, seq 64."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest

import run_pretrain_trainer
from data_tools.errors import run_cli
from ernie_pretrain.config import ScheduleConfig
from ernie_pretrain.metrics_logger import read_metrics
from ernie_pretrain.trainer import ResumableBatchSampler, requested_samples, valid_offset
from tests.ernie_pretrain.helpers import TINY_MODEL


@pytest.fixture
def corpus_dir(tiny_prefix):
    return str(Path(tiny_prefix).parent)


def trainer_argv(corpus: str, output_dir: str, vocab: str, *extra: str, **overrides) -> list:
    """Trainer flags for the tiny config on CPU; `overrides` replace defaults (value None drops the flag)."""
    flags = {
        "model_name_or_path": "ernie-1.0",
        "tokenizer_name_or_path": vocab,
        "model_config": TINY_MODEL,
        "input_dir": corpus,
        "output_dir": output_dir,
        "split": "8,1,1",
        "max_seq_length": "64",
        "per_device_train_batch_size": "4",
        "per_device_eval_batch_size": "4",
        "max_steps": "8",
        "learning_rate": "5e-3",
        "min_learning_rate": "1e-4",
        "warmup_ratio": "0.1",
        "eval_steps": "4",
        "eval_iters": "2",
        "save_steps": "4",
        "logging_steps": "1",
        "device": "cpu",
        "dataloader_num_workers": "0",
        "seed": "7",
        "report_to": "none",
        "disable_tqdm": "true",
    }
    flags.update({key: value for key, value in overrides.items()})
    argv = []
    for key, value in flags.items():
        if value is not None:
            argv += [f"--{key}", str(value)]
    return argv + ["--do_train", "--do_eval", "--do_predict", *extra]


def records(output_dir, split="train"):
    return [(r["step"], r["loss"], r["lm_loss"], r["sop_loss"]) for r in read_metrics(str(output_dir), split)]


def test_trainer_lowers_the_mlm_loss_and_writes_checkpoints(tmp_path, corpus_dir, vocab_path):
    out = tmp_path / "out"
    argv = trainer_argv(corpus_dir, str(out), str(vocab_path), max_steps=30, eval_steps=15, save_steps=15,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
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
    run's steps 5-8 bit for bit (losses, eval and test losses, final weights). The Trainer restores the optimizer,
    scheduler and RNG states; our sampler is positioned once at 4 x 4 consumed samples."""
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
