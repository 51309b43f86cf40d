"""tools/random_init_checkpoint.py: the checkpoint's architecture and tokenizer, fresh seeded weights."""

from __future__ import annotations

import numpy as np
import paddle

from ernie1.common.errors import run_cli
from tests.finetune.tiny_checkpoint import write_tiny_pretraining_checkpoint
from tools.random_init_checkpoint import main, write_random_init_checkpoint


def test_the_twin_has_the_architecture_and_vocab_but_fresh_weights(tmp_path, vocab_path):
    source = write_tiny_pretraining_checkpoint(tmp_path / "source", vocab_path, seed=7)
    twin = write_random_init_checkpoint(str(source), str(tmp_path / "twin"), seed=1)
    again = write_random_init_checkpoint(str(source), str(tmp_path / "again"), seed=1)
    assert (twin / "model_config.json").read_text() == (source / "model_config.json").read_text()
    assert (twin / "vocab.txt").read_bytes() == (source / "vocab.txt").read_bytes()
    original, fresh = (
        paddle.load(str(source / "model_state.pdparams")),
        paddle.load(str(twin / "model_state.pdparams")),
    )
    assert set(fresh) == set(original)
    key = "ernie.encoder.layers.0.linear1.weight"
    assert fresh[key].shape == original[key].shape and not np.allclose(fresh[key].numpy(), original[key].numpy())
    # Seeded: the same seed gives the same weights.
    np.testing.assert_array_equal(paddle.load(str(again / "model_state.pdparams"))[key].numpy(), fresh[key].numpy())


def test_a_directory_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert run_cli(main, ["--like", str(tmp_path), "--output_dir", str(tmp_path / "twin")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --like {tmp_path}: directory has no") and err.count("\n") == 1
