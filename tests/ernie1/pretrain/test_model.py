"""Model config (built-in, overrides, checkpoint dir), the criterion's padding-free MLM mean, the no-decay filter."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from ernie1.common.errors import FieldError
from ernie1.pretrain.config import ModelConfig, OptimConfig
from ernie1.pretrain.flags import argparse_flag_name
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.model import (
    ERNIE_1_0_CONFIG,
    PretrainingCriterion,
    build_ernie_config,
    build_pretraining_model,
    model_config_dict,
    parse_model_config_overrides,
)
from ernie1.pretrain.optim import build_optimizer, decayed_parameter_names

TINY = "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128"


def test_ernie_1_0_config_is_built_locally():
    config = build_ernie_config(ModelConfig(model_name_or_path="ernie-1.0"), vocab_size=18000)
    values = config.to_dict()
    for key in (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "max_position_embeddings",
        "type_vocab_size",
        "vocab_size",
    ):
        assert values[key] == ERNIE_1_0_CONFIG[key]
    assert (values["hidden_size"], values["hidden_act"], values["max_position_embeddings"]) == (768, "relu", 513)


def test_builtin_vocab_follows_the_tokenizer():
    assert build_ernie_config(ModelConfig(model_config=TINY), vocab_size=21128).vocab_size == 21128


def test_inline_json_and_file_overrides(tmp_path):
    assert parse_model_config_overrides("hidden_size=64, hidden_act=gelu,layer_norm_eps=1e-5") == {
        "hidden_size": 64,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
    }
    assert parse_model_config_overrides('{"num_hidden_layers": 3}') == {"num_hidden_layers": 3}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"hidden_size": 32, "num_attention_heads": 4}))
    config = build_ernie_config(ModelConfig(model_config=str(path)), vocab_size=100)
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (32, 4, 12)


@pytest.mark.parametrize(
    "text,message",
    [
        ("hidden_sise=64", "--model_config: unknown field(s) hidden_sise; known:"),
        ("/no/such.json", "--model_config /no/such.json: no such JSON file"),
        ("{bad json", "--model_config: invalid JSON"),
        ("hidden_size=60,num_attention_heads=8", "--model_config: hidden_size 60 must be a positive multiple of"),
        ("vocab_size=100", "--model_config: vocab_size 100 is smaller than the tokenizer's vocab (21128)"),
    ],
)
def test_bad_model_config(text, message):
    with pytest.raises(FieldError) as error:
        build_ernie_config(ModelConfig(model_config=text), vocab_size=21128)
    assert error.value.field == "model_config"
    assert error.value.render(argparse_flag_name).startswith(message)


def test_unknown_model_name():
    with pytest.raises(FieldError) as error:
        build_ernie_config(ModelConfig(model_name_or_path="ernie-9"), vocab_size=10)
    assert error.value.render(argparse_flag_name).startswith(
        "--model_name_or_path ernie-9: not a built-in config (ernie-1.0, "
    )


def test_checkpoint_dir_config(tmp_path):
    tiny = build_ernie_config(ModelConfig(model_config=TINY), vocab_size=500)
    (tmp_path / "model_config.json").write_text(json.dumps(model_config_dict(tiny)))
    again = build_ernie_config(ModelConfig(model_name_or_path=str(tmp_path), hidden_dropout_prob=0.0), vocab_size=400)
    assert (again.hidden_size, again.vocab_size, again.hidden_dropout_prob) == (64, 500, 0.0)


def test_criterion_ignores_padding_rows():
    criterion = PretrainingCriterion(binary_head=True)
    paddle.seed(0)
    scores = paddle.randn([8, 11])
    labels = paddle.to_tensor([[3], [5], [1], [-1], [-1], [-1], [-1], [-1]], dtype="int64")
    sop_scores = paddle.randn([2, 2])
    sop_labels = paddle.to_tensor([[0], [1]], dtype="int64")
    total, lm, sop = criterion(scores, sop_scores, labels, sop_labels)
    logits = scores.numpy()[:3]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected_lm = -np.mean(log_probs[[0, 1, 2], [3, 5, 1]])
    assert float(lm) == pytest.approx(expected_lm, rel=1e-5)
    assert float(total) == pytest.approx(float(lm) + float(sop), rel=1e-6)
    _, lm_only, zero = PretrainingCriterion(binary_head=False)(scores, None, labels)
    assert float(lm_only) == pytest.approx(expected_lm, rel=1e-5) and float(zero) == 0.0


def test_no_decay_filter_and_clip():
    config = build_ernie_config(ModelConfig(model_config=TINY), vocab_size=100)
    model = build_pretraining_model(config, binary_head=True)
    names = dict(model.named_parameters())
    decayed = set(decayed_parameter_names(model))
    for structured, param in names.items():
        assert (param.name in decayed) == ("bias" not in structured and "norm" not in structured), structured
    optim = OptimConfig(weight_decay=0.01, grad_clip=1.0)
    optimizer = build_optimizer(optim, model, build_lr_scheduler(optim))
    assert isinstance(optimizer._grad_clip, paddle.nn.ClipGradByGlobalNorm)
    assert build_optimizer(OptimConfig(), model, build_lr_scheduler(OptimConfig()))._grad_clip is None
