"""Checkpoint: layout, atomic replacement, backup fallback, clean tokenizer, refused resumes, kill -9 survival."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import pytest

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.pretrain.checkpoint import (
    COMPLETE_MARKER,
    RngState,
    check_resume_compatible,
    find_resume_checkpoint,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from ernie1.pretrain.flags import argparse_flag_name

REPO = Path(__file__).resolve().parents[3]


class Holder:
    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return self.state

    def set_state_dict(self, state):
        self.state = state


def meta(step, **extra):
    return {
        "model_name": "ernie-1.0",
        "global_step": step,
        "global_batch_size": 8,
        "consumed_samples": 8 * step,
        **extra,
    }


def test_layout_and_roundtrip(tmp_path):
    layer = paddle.nn.Linear(3, 2)
    target = save_checkpoint(
        str(tmp_path / "model_last"),
        {"model": layer, "optimizer": {"moment": np.ones(3)}, "scaler": None, "rng": RngState()},
        meta(5),
        model_config={"hidden_size": 3},
    )
    names = sorted(os.listdir(target))
    assert names == [
        "COMPLETE",
        "config.yml",
        "model_config.json",
        "model_state.pdopt",
        "model_state.pdparams",
        "rng_state.pdparams",
    ]
    assert read_meta(target) == meta(5)
    assert json.loads((target / "model_config.json").read_text()) == {"hidden_size": 3}
    other = paddle.nn.Linear(3, 2)
    optimizer_state = {}
    load_checkpoint(str(target), {"model": other, "optimizer": optimizer_state})
    np.testing.assert_array_equal(other.weight.numpy(), layer.weight.numpy())
    np.testing.assert_array_equal(optimizer_state["moment"], np.ones(3))
    assert not list(tmp_path.glob(".*"))


def test_rng_state_restores_all_three_streams(tmp_path):
    paddle.seed(3)
    np.random.seed(3)
    random.seed(3)
    save_checkpoint(str(tmp_path / "ck"), {"rng": RngState()}, meta(1))
    first = (random.random(), np.random.rand(), float(paddle.rand([1])))
    load_checkpoint(str(tmp_path / "ck"), {"rng": RngState()}, required=())
    assert (random.random(), np.random.rand(), float(paddle.rand([1]))) == first


def test_replacement_keeps_only_complete_checkpoints(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(str(tmp_path / "model_last"), {"model": {"w": np.full(2, step)}}, meta(step))
    assert find_resume_checkpoint(str(tmp_path)) == tmp_path / "model_last"
    assert read_meta(tmp_path / "model_last")["global_step"] == 3
    assert sorted(os.listdir(tmp_path)) == ["model_last"]
    # A kill between the two renames leaves only the backup: it is found.
    os.replace(tmp_path / "model_last", tmp_path / "model_last_bak")
    assert find_resume_checkpoint(str(tmp_path)) == tmp_path / "model_last_bak"
    # An incomplete directory (no marker) does not count.
    (tmp_path / "model_last_bak" / COMPLETE_MARKER).unlink()
    assert find_resume_checkpoint(str(tmp_path)) is None


def test_missing_optimizer_only_warns_but_missing_model_fails(tmp_path, caplog, monkeypatch):
    # A training run in the same session may have detached the package logger from the root (runtime.setup_logging).
    monkeypatch.setattr(logging.getLogger("ernie1"), "propagate", True)
    save_checkpoint(str(tmp_path / "ck"), {"model": {"w": np.zeros(2)}}, meta(1))
    holder = Holder(None)
    load_checkpoint(str(tmp_path / "ck"), {"model": holder, "optimizer": Holder(None)})
    assert "model_state.pdopt not found" in caplog.text
    (tmp_path / "ck" / "model_state.pdparams").unlink()
    with pytest.raises(ToolkitError, match="model_state.pdparams: missing from the checkpoint"):
        load_checkpoint(str(tmp_path / "ck"), {"model": holder})


def test_tokenizer_saved_without_the_extension(tmp_path):
    from ernie1.pretrain.data import load_pretraining_tokenizer

    vocab_path = tmp_path / "vocab.txt"
    vocab_path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "中", "国", "a", "##b"]) + "\n")
    tokenizer = load_pretraining_tokenizer(str(vocab_path))
    assert len(tokenizer) == tokenizer.vocab_size + 2  # ##中 and ##国 were added for masking
    target = save_checkpoint(str(tmp_path / "ck"), {}, meta(1), tokenizer=tokenizer)
    assert not (target / "added_tokens.json").exists()
    assert (target / "vocab.txt").read_text(encoding="utf-8") == vocab_path.read_text(encoding="utf-8")
    from paddlenlp.transformers import ErnieTokenizer

    reloaded = ErnieTokenizer.from_pretrained(str(target))
    assert len(reloaded) == reloaded.vocab_size == tokenizer.vocab_size


@pytest.mark.parametrize(
    "changed,message",
    [
        ({"global_batch_size": 16}, "cannot resume: global_batch_size changed (8 -> 16); restore --global_batch_size"),
        (
            {"model_config": {"hidden_size": 32, "num_hidden_layers": 2}},
            "cannot resume: model_config changed (hidden_size 64 -> 32); restore --model_config / --model_name_or_path",
        ),
        (
            {"data_prefixes": [[1.0, "other"]]},
            'cannot resume: data_prefixes changed ([[1.0, "tiny"]] -> [[1.0, "other"]]); restore --input_dir',
        ),
    ],
)
def test_refused_resumes(changed, message):
    saved = meta(4, model_config={"hidden_size": 64, "num_hidden_layers": 2}, data_prefixes=[[1.0, "tiny"]])
    check_resume_compatible(saved, dict(saved))
    with pytest.raises(FieldError) as error:
        check_resume_compatible(saved, {**saved, **changed}, "out/model_last")
    # The checkpoint layer names config fields; the CLI renders them as its flags.
    assert error.value.render(argparse_flag_name) == f"out/model_last: {message} or use a new --output_dir"


WRITER = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from ernie1.pretrain.checkpoint import save_checkpoint
state = {"w": np.arange(200_000, dtype=np.float32)}
print("ready", flush=True)
step = 0
while True:
    step += 1
    state["w"][0] = step
    save_checkpoint(sys.argv[1] + "/model_last", {"model": state, "optimizer": state}, {"global_step": step})
"""


@pytest.mark.slow
def test_kill_9_during_repeated_checkpointing_leaves_a_loadable_model_last(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(0)
    last_step = 0
    for _round in range(4):
        process = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "out"), str(REPO)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        found = find_resume_checkpoint(str(tmp_path / "out"))
        assert found is not None
        step = read_meta(found)["global_step"]
        weights = paddle.load(str(found / "model_state.pdparams"))
        assert weights["w"][0] == step and weights["w"].shape == (200_000,)
        assert paddle.load(str(found / "model_state.pdopt"))["w"][0] == step
        # The next writer starts over from step 1; the surviving checkpoint is whatever was complete.
        assert step >= 1
        last_step = step
    assert last_step >= 1
