"""A tiny ERNIE pretraining checkpoint in the layout the pretraining scripts write, for fine-tuning tests."""

from __future__ import annotations

import json
from pathlib import Path

TINY_ERNIE = dict(
    vocab_size=21128,  # the cn_clip (bert-base-chinese) vocab
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=128,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def write_tiny_pretraining_checkpoint(directory: Path, vocab_path: Path, seed: int = 7, dropout: float = 0.0) -> Path:
    """ErnieForPretraining(tiny config) + cn_clip vocab saved as model_state.pdparams, model_config.json, vocab.txt..."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieTokenizer

    directory = Path(directory)
    paddle.seed(seed)
    config = dict(TINY_ERNIE, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = ErnieForPretraining(ErnieConfig(**config))
    model.save_pretrained(str(directory))
    # The pretraining checkpoints name the config model_config.json (the original's name); paddlenlp reads both.
    (directory / "config.json").rename(directory / "model_config.json")
    ErnieTokenizer(str(vocab_path)).save_pretrained(str(directory))
    (directory / "config.yml").write_text("model_name: ernie-1.0\nglobal_step: 0\n", encoding="utf-8")
    return directory


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
