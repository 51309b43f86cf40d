"""Every checkpoint layout the toolkit writes loads as the same masked LM; bad directories are one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieForMaskedLM, ErnieForPretraining, ErnieTokenizer

from converter.params_static_to_dygraph import main as convert
from ernie1.common.errors import ToolkitError
from ernie1.pretrain.checkpoint import save_checkpoint
from ernie1.pretrain.masked_lm import (
    encode_masked_text,
    fill_masks,
    load_masked_lm,
    pad_batch,
    predict_masked,
    random_masked_lm,
    read_architecture,
)
from ernie1.pretrain.model import model_config_dict
from tests import probe_support


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """One random tiny ErnieForPretraining saved as dygraph, paddlenlp, static and converted-static checkpoints."""
    root = tmp_path_factory.mktemp("layouts")
    tokenizer = ErnieTokenizer(str(probe_support.write_vocab(root / "vocab")))
    paddle.seed(11)
    model = ErnieForPretraining(probe_support.ernie_config(len(tokenizer)))
    model.eval()
    dirs = {
        "dygraph": probe_support.save_dygraph(model, tokenizer, root / "model_last"),
        "paddlenlp": probe_support.save_paddlenlp(model, tokenizer, root / "checkpoint-3"),
        "static": probe_support.save_static(model, tokenizer, root / "static" / "model_last"),
    }
    assert convert(["--path", str(dirs["static"]), "--output_path", str(root / "converted")]) == 0
    dirs["converted"] = root / "converted"
    return tokenizer, {kind: str(path) for kind, path in dirs.items()}


def queries(tokenizer):
    texts = ["哈尔滨是[MASK][MASK][MASK]的省会", "[MASK][MASK]是中国的首都", "杜甫被称为[MASK]圣"]
    encoded = [encode_masked_text(text, tokenizer) for text in texts]
    return [ids for ids, _ in encoded], [positions for _, positions in encoded]


def test_every_layout_loads_the_same_weights(layouts):
    tokenizer, dirs = layouts
    sequences, positions = queries(tokenizer)
    loaded = {kind: load_masked_lm(path) for kind, path in dirs.items()}
    assert {kind: m.kind for kind, m in loaded.items()} == {
        "dygraph": "dygraph",
        "paddlenlp": "paddlenlp",
        "static": "static",
        "converted": "dygraph",
    }
    assert all(isinstance(m.model, ErnieForPretraining) and not m.model.training for m in loaded.values())
    reference = predict_masked(loaded["dygraph"], sequences, positions, top_k=4)
    assert [ids.shape for ids, _ in reference] == [(3, 4), (2, 4), (1, 4)]
    for kind in ("paddlenlp", "static", "converted"):
        for (ids, probs), (ref_ids, ref_probs) in zip(
            predict_masked(loaded[kind], sequences, positions, top_k=4), reference
        ):
            np.testing.assert_array_equal(ids, ref_ids)
            np.testing.assert_array_equal(probs, ref_probs)


def test_batching_does_not_change_predictions(layouts):
    tokenizer, dirs = layouts
    masked_lm = load_masked_lm(dirs["dygraph"])
    sequences, positions = queries(tokenizer)
    one_by_one = predict_masked(masked_lm, sequences, positions, batch_size=1, top_k=3)
    together = predict_masked(masked_lm, sequences, positions, batch_size=8, top_k=3)
    for (ids, probs), (ids_b, probs_b) in zip(one_by_one, together):
        np.testing.assert_array_equal(ids, ids_b)
        np.testing.assert_allclose(probs, probs_b, rtol=1e-5)
        assert np.all(np.diff(probs, axis=1) <= 0)  # most likely first


def test_a_masked_lm_checkpoint_loads_as_ernie_for_masked_lm(layouts, tmp_path):
    tokenizer, _ = layouts
    paddle.seed(5)
    model = ErnieForMaskedLM(probe_support.ernie_config(len(tokenizer)))
    directory = tmp_path / "mlm" / "model_last"
    save_checkpoint(str(directory), {"model": model}, {"global_step": 1}, tokenizer, model_config_dict(model.config))
    masked_lm = load_masked_lm(str(directory))
    assert isinstance(masked_lm.model, ErnieForMaskedLM)
    sequences, positions = queries(tokenizer)
    model.eval()
    with paddle.no_grad():
        expected = model(
            paddle.to_tensor([sequences[1]]), masked_positions=paddle.to_tensor(positions[1], dtype="int64")
        ).numpy()
    ids, _ = predict_masked(masked_lm, sequences[1:2], positions[1:2])[0]
    np.testing.assert_array_equal(ids[:, 0], expected.argmax(-1))


def test_random_init_is_seeded(layouts):
    tokenizer, dirs = layouts
    values = read_architecture(dirs["dygraph"], "--model_dir")
    first, again, other = (random_masked_lm(values, tokenizer, seed, "x") for seed in (1, 1, 2))
    weight = "ernie.embeddings.word_embeddings.weight"
    np.testing.assert_array_equal(first.model.state_dict()[weight].numpy(), again.model.state_dict()[weight].numpy())
    assert not np.array_equal(first.model.state_dict()[weight].numpy(), other.model.state_dict()[weight].numpy())
    assert first.name == first.kind == "random_init"


def test_pad_batch_layout():
    batch = pad_batch([[2, 7, 8, 3], [2, 9, 3]], [[1, 2], [1]], pad_id=0)
    np.testing.assert_array_equal(batch["input_ids"], [[2, 7, 8, 3], [2, 9, 3, 0]])
    np.testing.assert_array_equal(batch["attention_mask"][:, 0, 0], [[0, 0, 0, 0], [0, 0, 0, -1e4]])
    np.testing.assert_array_equal(batch["masked_positions"], [1, 2, 5])


def test_encode_masked_text_keeps_literal_masks(layouts):
    tokenizer, _ = layouts
    ids, positions = encode_masked_text("哈尔滨是[MASK][MASK]江", tokenizer)
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "哈", "尔", "滨", "是", "[MASK]", "[MASK]", "江", "[SEP]"]
    assert positions == [5, 6]


def test_fill_masks_replaces_each_mask_with_its_top_candidate(layouts):
    tokenizer, dirs = layouts
    masked_lm = load_masked_lm(dirs["dygraph"])
    (filled,) = fill_masks(masked_lm, ["x[MASK]是中国的首[MASK]"], top_k=2)
    assert len(filled.candidates) == 2 and all(len(c) == 2 for c in filled.candidates)
    first, second = filled.candidates[0][0][0], filled.candidates[1][0][0]
    assert filled.filled == f"x{first}是中国的首{second}"
    with pytest.raises(ToolkitError, match=r"^text 1 has no \[MASK\]; write one per character to predict$"):
        fill_masks(masked_lm, ["北京是中国的首都"])
    with pytest.raises(ToolkitError, match=r"^text 1: 202 tokens with \[CLS\] and \[SEP\], .* has only 128 positions"):
        fill_masks(masked_lm, ["[MASK]" + "京" * 199])


# -------------------------------------------------------------------------------------------------------- errors


def error_of(directory) -> str:
    with pytest.raises(ToolkitError) as caught:
        load_masked_lm(str(directory))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_not_a_checkpoint(tmp_path, layouts):
    assert error_of(tmp_path / "nope") == f"--model_dir {tmp_path / 'nope'}: no such directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert error_of(empty) == (
        f"--model_dir {empty}: not a checkpoint directory (no model_state.pdparams, nor static_vars.pdparams + "
        "static_name_map.json)"
    )
    output_dir = tmp_path / "output"
    shutil.copytree(layouts[1]["dygraph"], output_dir / "model_last")
    (output_dir / "checkpoint-4").mkdir()
    assert error_of(output_dir).endswith("; it holds model_last and checkpoint-4: pass that directory")


def test_truncated_weights_are_named(tmp_path, layouts):
    for kind, name in (("dygraph", "model_state.pdparams"), ("static", "static_vars.pdparams")):
        broken = tmp_path / kind
        shutil.copytree(layouts[1][kind], broken)
        data = (broken / name).read_bytes()
        (broken / name).write_bytes(data[: len(data) // 2])
        message = error_of(broken)
        assert message.startswith(f"--model_dir {broken}: {broken / name}: "), message
        assert "truncated" in message


def test_missing_config_foreign_weights_and_wrong_vocab(tmp_path, layouts):
    tokenizer, dirs = layouts
    no_config = tmp_path / "no_config"
    shutil.copytree(dirs["dygraph"], no_config)
    (no_config / "model_config.json").unlink()
    assert error_of(no_config) == f"--model_dir {no_config}: directory has no model_config.json or config.json"

    finetuned = tmp_path / "finetuned"
    shutil.copytree(dirs["dygraph"], finetuned)
    state = paddle.load(str(finetuned / "model_state.pdparams"))
    paddle.save({k: v for k, v in state.items() if k.startswith("ernie.")}, str(finetuned / "model_state.pdparams"))
    assert "no masked-LM head (cls.predictions.*): a fine-tuned model?" in error_of(finetuned)

    bigger_vocab = tmp_path / "bigger_vocab"
    shutil.copytree(dirs["dygraph"], bigger_vocab)
    with open(bigger_vocab / "vocab.txt", "a", encoding="utf-8") as handle:
        handle.write("甲\n乙\n")
    assert error_of(bigger_vocab) == (
        f"--model_dir {bigger_vocab}: the vocabulary has {len(tokenizer) + 2} tokens but the model only "
        f"{len(tokenizer)} (vocab_size): the checkpoint's vocab.txt is not the one it was trained with"
    )

    other_shape = tmp_path / "other_shape"
    shutil.copytree(dirs["dygraph"], other_shape)
    config = json.loads((other_shape / "model_config.json").read_text())
    (other_shape / "model_config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
    assert "has shape [64, 128], the config says [64, 96]" in error_of(other_shape)
