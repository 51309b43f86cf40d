"""finetune/loading.py and finetune/export.py: tokenizer and model loading from pretraining checkpoints, export checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from finetune.export import export_model
from finetune.loading import load_model_for_task, load_tokenizer_for_finetune
from tests.finetune.tiny_checkpoint import write_tiny_pretraining_checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("tiny_ckpt") / "model_last", vocab_path)


def test_pretraining_tokenizer_loads_without_added_wordpiece_tokens(tiny_checkpoint, tmp_path):
    import shutil

    tokenizer = load_tokenizer_for_finetune(str(tiny_checkpoint))
    assert len(tokenizer) == 21128 and tokenizer.added_tokens_encoder == {}
    # A tokenizer saved after vocab extension via add_tokens carries `##` entries in added_tokens.json: drop them.
    extended = tmp_path / "extended"
    shutil.copytree(tiny_checkpoint, extended)
    (extended / "added_tokens.json").write_text(json.dumps({"##𠀀": 21128, "##𠀁": 21129}), encoding="utf-8")
    loaded = load_tokenizer_for_finetune(str(extended))
    assert len(loaded) == 21128 and not [t for t in loaded.added_tokens_encoder if t.startswith("##")]
    text = "东西不错，总之还算满意。Good"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_tokenizer_errors(tmp_path, monkeypatch):
    with pytest.raises(
        ToolkitError, match=r"^--model_name_or_path .*: no vocab.txt in this directory; pass --tokenizer_name"
    ):
        load_tokenizer_for_finetune(str(tmp_path))
    with pytest.raises(ToolkitError, match=r"^--model_name_or_path ./missing: no such directory$"):
        load_tokenizer_for_finetune("./missing")

    from paddlenlp.transformers import AutoTokenizer

    def offline(*args, **kwargs):
        raise OSError("Can't load the model for 'ernie-1.0'")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(ToolkitError) as info:
        load_tokenizer_for_finetune("ernie-1.0")
    assert str(info.value) == (
        "--model_name_or_path ernie-1.0: cannot load it from the paddlenlp hub (Can't load the model for 'ernie-1.0'); "
        "offline, pass a local checkpoint directory such as the pretraining output's model_last "
        "(model_state.pdparams, model_config.json, vocab.txt)"
    )


def test_classifier_loads_encoder_weights_from_pretraining_checkpoint(tiny_checkpoint):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    pretrained = paddle.load(str(tiny_checkpoint / "model_state.pdparams"))
    model = load_model_for_task(ErnieForSequenceClassification, str(tiny_checkpoint), num_classes=3)
    state = model.state_dict()
    key = "ernie.encoder.layers.1.linear2.weight"
    assert np.array_equal(state[key].numpy(), pretrained[key].numpy())
    assert model.num_labels == 3


def test_converted_state_dict_file_with_config_dir(tiny_checkpoint, tmp_path):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    # The static->dygraph converter writes a bare state dict; the encoder may come without the `ernie.` prefix.
    pretrained = paddle.load(str(tiny_checkpoint / "model_state.pdparams"))
    bare = {k[len("ernie.") :]: v for k, v in pretrained.items() if k.startswith("ernie.")}
    converted = tmp_path / "ernie-1.0_converted.pdparams"
    paddle.save(bare, str(converted))
    model = load_model_for_task(
        ErnieForSequenceClassification, str(converted), config_name=str(tiny_checkpoint), num_classes=2
    )
    key = "encoder.layers.0.self_attn.q_proj.weight"
    assert np.array_equal(model.state_dict()["ernie." + key].numpy(), bare[key].numpy())


def test_model_loading_errors(tiny_checkpoint, tmp_path):
    from paddlenlp.transformers import ErnieForSequenceClassification

    with pytest.raises(ToolkitError, match=r"no model_state.pdparams in this directory$"):
        load_model_for_task(ErnieForSequenceClassification, str(tmp_path))
    (tmp_path / "model_state.pdparams").write_bytes((tiny_checkpoint / "model_state.pdparams").read_bytes())
    with pytest.raises(ToolkitError, match=r"no config.json or model_config.json; pass --config_name <dir with it>$"):
        load_model_for_task(ErnieForSequenceClassification, str(tmp_path))
    with pytest.raises(ToolkitError, match=r"^--model_name_or_path ./nope: no such checkpoint directory"):
        load_model_for_task(ErnieForSequenceClassification, "./nope")


def test_export_requires_max_seq_length(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="max_seq_length"):
        export_model(object(), object(), str(tmp_path), "seq_cls", {})


def test_checkpoint_saved_by_pretraining_with_extended_vocab_loads_for_finetuning(tmp_path, vocab_path):
    """The real pretraining writer: `##` extension in the tokenizer, a larger embedding, a minimal model_config.json."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieTokenizer

    checkpoint = pytest.importorskip("ernie1.pretrain.checkpoint")
    model_module = pytest.importorskip("ernie1.pretrain.model")
    tokenization = pytest.importorskip("ernie1.text.tokenizer")

    # A vocab without the `##<CJK>` lines, so that the extension really adds tokens (as with the ERNIE vocabs).
    lines = vocab_path.read_text(encoding="utf-8").splitlines()
    reduced = [t for t in lines if not (t.startswith("##") and len(t) == 3 and "\u4e00" <= t[2] <= "\u9fa5")]
    (tmp_path / "vocab.txt").write_text("\n".join(reduced) + "\n", encoding="utf-8")
    tokenizer = ErnieTokenizer(str(tmp_path / "vocab.txt"))
    base_size = len(tokenizer)
    added = tokenization.extend_chinese_char(tokenizer)
    assert added == 7321 and len(tokenizer) == base_size + added
    config = ErnieConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    paddle.seed(5)
    pretrained = ErnieForPretraining(config)
    target = tmp_path / "output" / "model_last"
    checkpoint.save_checkpoint(
        str(target), {"model": pretrained}, {"global_step": 1}, tokenizer, model_module.model_config_dict(config)
    )

    loaded = load_tokenizer_for_finetune(str(target))
    assert len(loaded) == base_size and not any(t.startswith("##") for t in loaded.added_tokens_encoder)
    ids = loaded("东西不错，总之还算满意")["input_ids"]
    assert max(ids) < base_size and loaded.convert_ids_to_tokens(ids[1:3]) == ["东", "西"]
    model = load_model_for_task(ErnieForSequenceClassification, str(target), num_classes=2)
    key = "ernie.embeddings.word_embeddings.weight"
    assert np.array_equal(model.state_dict()[key].numpy(), pretrained.state_dict()[key].numpy())
