"""Static checkpoint -> converter -> dygraph: identical outputs on the same batch; bad inputs give one-line errors."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieModel, ErnieTokenizer

from converter.params_static_to_dygraph import main
from ernie1.common.errors import run_cli
from ernie1.common.formats import STATIC_NAME_MAP_FILE
from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig
from ernie1.pretrain.engines.static_program import (
    build_inference_program,
    build_static_programs,
    create_executor,
    feed_for,
    initialize_parameters,
    train_step,
)
from ernie1.pretrain.model import model_config_dict
from ernie1.pretrain.static_checkpoint import read_static_params, save_static_checkpoint

BATCH, SEQ_LEN, MASKED = 2, 16, 8


def tiny_ernie_config(vocab_size: int) -> ErnieConfig:
    return ErnieConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_act="relu",
    )


def synthetic_batch(seed: int, vocab_size: int) -> dict:
    """A collated-format batch (ernie1.data.collate keys) with one padded masked row and one padded token."""
    rng = np.random.RandomState(seed)
    input_ids = rng.randint(1, vocab_size, (BATCH, SEQ_LEN)).astype("int64")
    attention_mask = np.zeros((BATCH, 1, 1, SEQ_LEN), "float32")
    attention_mask[1, ..., -1] = -1e4
    positions = np.sort(rng.choice(BATCH * SEQ_LEN, MASKED, replace=False)).astype("int32")
    labels = input_ids.reshape(-1)[positions].reshape(-1, 1).copy()
    labels[-1] = -1
    return {
        "input_ids": input_ids,
        "token_type_ids": (np.arange(SEQ_LEN) >= SEQ_LEN // 2).astype("int64")[None].repeat(BATCH, 0),
        "attention_mask": attention_mask,
        "masked_positions": positions,
        "masked_lm_labels": labels,
        "next_sentence_labels": np.array([[0], [1]], "int64"),
    }


def tiny_config() -> PretrainConfig:
    return PretrainConfig(
        model=ModelConfig(),
        optim=OptimConfig(max_lr=1e-3, min_lr=1e-4, warmup_steps=1, decay_steps=10, weight_decay=0.01),
        schedule=ScheduleConfig(global_batch_size=BATCH, micro_batch_size=BATCH, max_steps=10),
        runtime=RuntimeConfig(device="cpu"),
    )


@pytest.fixture(scope="module")
def static_run(tmp_path_factory, vocab_path):
    """Train a tiny static model 3 steps, save a checkpoint, and record its static outputs on a held-out batch."""
    tokenizer = ErnieTokenizer(vocab_file=str(vocab_path))
    ernie_config = tiny_ernie_config(tokenizer.vocab_size)
    checkpoint_dir = tmp_path_factory.mktemp("static") / "model_last"
    probe = synthetic_batch(100, tokenizer.vocab_size)
    paddle.enable_static()
    try:
        with paddle.static.scope_guard(paddle.static.Scope()):
            programs = build_static_programs(tiny_config(), ernie_config)
            exe = create_executor("cpu")
            initialize_parameters(exe, programs, seed=1, rank=0)
            for step in range(3):
                train_step(exe, programs, [synthetic_batch(step, tokenizer.vocab_size)])
            save_static_checkpoint(
                str(checkpoint_dir),
                programs.main,
                programs.name_map,
                {"global_step": 3},
                tokenizer=tokenizer,
                model_config=model_config_dict(ernie_config),
            )
        with paddle.static.scope_guard(paddle.static.Scope()):
            program, startup, feed_names, outputs = build_inference_program(ernie_config)
            exe.run(startup)
            paddle.static.set_program_state(program, read_static_params(str(checkpoint_dir / "static_vars.pdparams")))
            static_scores, static_sop = exe.run(program, feed=feed_for(probe, feed_names), fetch_list=list(outputs))
    finally:
        paddle.disable_static()
    return checkpoint_dir, probe, static_scores, static_sop


def dygraph_outputs(model, batch):
    model.eval()
    with paddle.no_grad():
        scores, sop = model(
            paddle.to_tensor(batch["input_ids"]),
            token_type_ids=paddle.to_tensor(batch["token_type_ids"]),
            attention_mask=paddle.to_tensor(batch["attention_mask"]),
            masked_positions=paddle.to_tensor(batch["masked_positions"]),
        )
    return scores.numpy(), sop.numpy()


def test_converted_directory_reproduces_static_outputs_exactly(static_run, tmp_path):
    checkpoint_dir, probe, static_scores, static_sop = static_run
    output_dir = tmp_path / "dygraph"
    assert main(["--path", str(checkpoint_dir), "--output_path", str(output_dir)]) == 0
    assert {"model_state.pdparams", "model_config.json", "vocab.txt"} <= {p.name for p in output_dir.iterdir()}

    model = ErnieForPretraining.from_pretrained(str(output_dir))
    scores, sop = dygraph_outputs(model, probe)
    assert scores.shape == static_scores.shape == (MASKED, model.config.vocab_size)
    # Same weights, same kernels on CPU: the outputs agree bit for bit (max |diff| == 0).
    assert np.abs(scores - static_scores).max() == 0.0
    assert np.abs(sop - static_sop).max() == 0.0

    # Fine-tuning loads the encoder alone, and the tokenizer, from the same directory.
    encoder = ErnieModel.from_pretrained(str(output_dir))
    np.testing.assert_array_equal(
        encoder.embeddings.word_embeddings.weight.numpy(), model.ernie.embeddings.word_embeddings.weight.numpy()
    )
    assert ErnieTokenizer.from_pretrained(str(output_dir)).vocab_size == model.config.vocab_size


def test_prefix_and_pdparams_file_forms(static_run, tmp_path):
    checkpoint_dir = static_run[0]
    reference = tmp_path / "ref.pdparams"
    assert main(["--path", str(checkpoint_dir / "static_vars"), "--output_path", str(reference)]) == 0
    state = paddle.load(str(reference))
    # Every structured key of the model (tied decoder weight included), nothing else.
    assert sorted(state) == sorted(json.loads((checkpoint_dir / STATIC_NAME_MAP_FILE).read_text()))
    other = tmp_path / "other.pdparams"
    assert main(["--path", str(checkpoint_dir / "static_vars.pdparams"), "--output_path", str(other)]) == 0
    again = paddle.load(str(other))
    assert sorted(again) == sorted(state)
    for key in state:
        np.testing.assert_array_equal(again[key].numpy(), state[key].numpy())


def test_without_name_map_the_map_is_rebuilt_from_the_architecture(static_run, tmp_path):
    checkpoint_dir, probe, static_scores, _ = static_run
    copy = tmp_path / "no_map"
    shutil.copytree(checkpoint_dir, copy)
    (copy / STATIC_NAME_MAP_FILE).unlink()
    output_dir = tmp_path / "out"
    assert main(["--path", str(copy), "--output_path", str(output_dir)]) == 0
    scores, _ = dygraph_outputs(ErnieForPretraining.from_pretrained(str(output_dir)), probe)
    assert np.abs(scores - static_scores).max() == 0.0


def cli_error(argv, capsys) -> str:
    assert run_cli(main, argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_parameters_are_listed(static_run, tmp_path, capsys):
    checkpoint_dir = static_run[0]
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint_dir, broken)
    with open(broken / "static_vars.pdparams", "rb") as handle:
        params = pickle.load(handle)
    del params["linear_3.w_0"], params["layer_norm_0.b_0"]
    with open(broken / "static_vars.pdparams", "wb") as handle:
        pickle.dump(params, handle)
    message = cli_error(["--path", str(broken), "--output_path", str(tmp_path / "x")], capsys)
    assert message.startswith(f"error: --path {broken}: 2 parameter(s) missing from the static checkpoint, e.g. ")
    assert "ernie.embeddings.layer_norm.bias (layer_norm_0.b_0)" in message
    assert "ernie.encoder.layers.0.self_attn.out_proj.weight (linear_3.w_0)" in message


def test_bad_arguments_give_one_line_errors(static_run, tmp_path, capsys):
    checkpoint_dir = static_run[0]
    assert cli_error([], capsys) == "error: the following arguments are required: --path"
    missing = tmp_path / "nothing"
    assert cli_error(["--path", str(missing)], capsys) == (
        f"error: --path {missing}: no such static checkpoint ({missing}.pdparams not found)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_error(["--path", str(empty)], capsys) == (
        f"error: --path {empty}: directory has no static_vars.pdparams (not a static checkpoint)"
    )
    assert cli_error(["--path", str(checkpoint_dir), "--model", "bert-base"], capsys) == (
        "error: --model bert-base: not a built-in name (ernie-1.0, ernie-1.0-base-zh) nor a directory"
    )
    # The built-in ERNIE 1.0 architecture (768 hidden) does not fit the tiny checkpoint (32 hidden).
    assert cli_error(["--path", str(checkpoint_dir), "--model", "ernie-1.0"], capsys) == (
        "error: --model ernie-1.0: hidden_size 768 does not match the checkpoint's 32 "
        f"({checkpoint_dir / 'static_vars.pdparams'}); pass the config the checkpoint was trained with"
    )
    no_config = tmp_path / "no_config"
    shutil.copytree(checkpoint_dir, no_config)
    (no_config / "model_config.json").unlink()
    assert cli_error(["--path", str(no_config)], capsys) == (
        f"error: --model is required: {no_config} has no model_config.json"
    )


def test_output_path_that_is_a_file_is_one_line(static_run, tmp_path, capsys):
    checkpoint_dir = static_run[0]
    existing = tmp_path / "weights_here"
    existing.write_text("a file")
    assert cli_error(["--path", str(checkpoint_dir), "--output_path", str(existing)], capsys) == (
        f"error: --output_path {existing}: is a file, not a directory (end the name in .pdparams for a weights file)"
    )
    assert existing.read_text() == "a file"
    as_dir = tmp_path / "dir.pdparams"
    as_dir.mkdir()
    assert cli_error(["--path", str(checkpoint_dir), "--output_path", str(as_dir)], capsys) == (
        f"error: --output_path {as_dir}: is a directory; give a new <name>.pdparams file"
    )


@pytest.mark.parametrize("output_name", ["converted", "converted.pdparams"])
def test_a_full_disk_is_one_line_and_leaves_no_temporaries(static_run, tmp_path, capsys, monkeypatch, output_name):
    def full_disk(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paddle, "save", full_disk)
    output = tmp_path / "out" / output_name
    assert cli_error(["--path", str(static_run[0]), "--output_path", str(output)], capsys) == (
        f"error: --output_path {output}: cannot write (No space left on device)"
    )
    assert sorted(os.listdir(tmp_path / "out")) == []
