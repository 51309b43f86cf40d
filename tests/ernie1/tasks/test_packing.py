"""Packed batches give the unpacked per-example logits, losses and gradients (seq_cls and NER, tiny model, eval mode)."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest
from paddlenlp.data import DataCollatorForTokenClassification, DataCollatorWithPadding
from paddlenlp.trainer.trainer_utils import find_batch_size
from paddlenlp.transformers import ErnieConfig, ErnieForSequenceClassification, ErnieForTokenClassification

from ernie1.tasks import get_task
from ernie1.tasks.packing import (
    EVERY_TOKEN,
    FIRST_TOKEN,
    LABEL_PAD,
    PackedErnieForSequenceClassification,
    PackedErnieForTokenClassification,
    PackingCollator,
)
from tests.finetune.tiny_checkpoint import TINY_ERNIE

VOCAB = 300
CAPACITY = 64
LENGTHS = (3, 10, 25, 7, 40, 2, 61, 12)  # tokens between [CLS] and [SEP]; 8 examples -> 3 rows of 64
TOL = dict(rtol=1e-5, atol=1e-5)
PADDLENLP_CLASS = {
    PackedErnieForSequenceClassification: ErnieForSequenceClassification,
    PackedErnieForTokenClassification: ErnieForTokenClassification,
}


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    from paddlenlp.transformers import ErnieTokenizer

    tokenizer = ErnieTokenizer(str(vocab_path))
    assert tokenizer.pad_token_id == 0
    return tokenizer


def features(num_labels, per_token, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in LENGTHS:
        ids = [1] + rng.integers(5, VOCAB, n).tolist() + [2]
        types = [0] * (n // 2 + 1) + [1] * (n - n // 2 + 1)  # a text pair: both token types used
        labels = rng.integers(0, num_labels, n + 2).tolist() if per_token else int(rng.integers(0, num_labels))
        out.append({"input_ids": ids, "token_type_ids": types, "labels": labels})
    return out


def pair(packed_cls, num_labels, seed=3):
    """A packed-capable model and paddlenlp's class on the same weights, both in eval mode."""
    paddle.seed(seed)
    config = ErnieConfig(**dict(TINY_ERNIE, vocab_size=VOCAB, num_labels=num_labels))
    packed = packed_cls(config)
    reference = PADDLENLP_CLASS[packed_cls](config)
    reference.set_state_dict(packed.state_dict())
    packed.eval(), reference.eval()
    return packed, reference


def gradients(model):
    return {name: param.grad.numpy().copy() for name, param in model.named_parameters() if param.grad is not None}


def test_seq_cls_packed_logits_loss_and_gradients_equal_unpacked(tokenizer):
    packed_model, reference = pair(PackedErnieForSequenceClassification, num_labels=3)
    batch = features(3, per_token=False)
    packed = PackingCollator(CAPACITY, 0, FIRST_TOKEN)(batch)
    unpacked = DataCollatorWithPadding(tokenizer)(batch)
    assert packed["input_ids"].shape[0] == 3 and unpacked["input_ids"].shape == [8, 63]
    criterion = paddle.nn.loss.CrossEntropyLoss()  # the seq_cls task's Trainer criterion: mean over examples
    results = []
    for model, inputs in ((packed_model, packed), (reference, unpacked)):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        logits = model(**inputs)
        loss = criterion(logits, labels)
        loss.backward()
        results.append((logits.numpy(), float(loss), gradients(model)))
    (packed_logits, packed_loss, packed_grads), (logits, loss, grads) = results
    assert packed_logits.shape == (8, 3)
    np.testing.assert_allclose(packed_logits, logits, **TOL)
    assert packed_loss == pytest.approx(loss, rel=1e-5)
    assert sorted(packed_grads) == sorted(grads) and "ernie.pooler.dense.weight" in grads
    for name in grads:
        np.testing.assert_allclose(packed_grads[name], grads[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_ner_packed_token_logits_loss_and_gradients_equal_unpacked(tokenizer):
    packed_model, reference = pair(PackedErnieForTokenClassification, num_labels=5)
    batch = features(5, per_token=True)
    packed = PackingCollator(CAPACITY, 0, EVERY_TOKEN)(batch)
    unpacked = DataCollatorForTokenClassification(tokenizer)(batch)
    criterion = get_task("ner").criterion()  # the NER task's Trainer criterion: mean over labelled tokens
    results = []
    for model, inputs in ((packed_model, packed), (reference, unpacked)):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        logits = model(**inputs)
        loss = criterion(logits, labels)
        loss.backward()
        results.append((logits.numpy(), float(loss), gradients(model)))
    (packed_logits, packed_loss, packed_grads), (logits, loss, grads) = results
    # The packed model's own loss (labels passed in) is the same labelled mean.
    assert float(packed_model(**packed)[0]) == pytest.approx(packed_loss, rel=1e-5)
    assert packed_logits.shape == logits.shape == (8, 63, 5)
    for row, n in enumerate(LENGTHS):  # positions past an example's end are padding in both layouts
        np.testing.assert_allclose(packed_logits[row, : n + 2], logits[row, : n + 2], **TOL)
    assert packed_loss == pytest.approx(loss, rel=1e-5)
    assert sorted(packed_grads) == sorted(grads)
    for name in grads:
        np.testing.assert_allclose(packed_grads[name], grads[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_without_packing_inputs_the_models_are_paddlenlps(tokenizer):
    for packed_cls, num_labels in ((PackedErnieForSequenceClassification, 2), (PackedErnieForTokenClassification, 4)):
        packed_model, reference = pair(packed_cls, num_labels)
        inputs = {k: v for k, v in DataCollatorWithPadding(tokenizer)(features(2, False)).items()}
        inputs.pop("labels")
        np.testing.assert_array_equal(packed_model(**inputs).numpy(), reference(**inputs).numpy())


def test_checkpoints_keep_paddlenlps_names_and_class(tmp_path):
    packed_model, reference = pair(PackedErnieForSequenceClassification, num_labels=2)
    assert list(packed_model.state_dict()) == list(reference.state_dict())
    packed_model.save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["ErnieForSequenceClassification"]  # AutoModel reloads it unpacked
    reloaded = ErnieForSequenceClassification.from_pretrained(str(tmp_path))
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(reloaded.state_dict()[name].numpy(), value.numpy())


def test_collator_layout_and_per_example_keys_first():
    batch = PackingCollator(CAPACITY, 0, FIRST_TOKEN).pack(features(2, per_token=False))
    assert list(batch)[:2] == ["cls_positions", "labels"]
    assert find_batch_size({k: paddle.to_tensor(v) for k, v in batch.items()}) == len(LENGTHS)  # examples, not rows
    rows, width = batch["input_ids"].shape
    assert batch["attention_mask"].shape == (rows, 1, width, width) and width <= CAPACITY
    for (row, column), n in zip(batch["cls_positions"], LENGTHS):
        assert batch["input_ids"][row, column] == 1 and batch["input_ids"][row, column + n + 1] == 2
        assert batch["position_ids"][row, column : column + n + 2].tolist() == list(range(n + 2))
    real = sum(n + 2 for n in LENGTHS)
    assert int((batch["input_ids"] != 0).sum()) == real
    tags = PackingCollator(CAPACITY, 0, EVERY_TOKEN).pack(features(3, per_token=True))
    assert tags["labels"].shape == (len(LENGTHS), max(LENGTHS) + 2)
    assert (tags["labels"][0, LENGTHS[0] + 2 :] == LABEL_PAD).all()


def test_tasks_that_pack():
    assert get_task("seq_cls").packs and get_task("ner").packs and not get_task("qa").packs
    assert get_task("seq_cls").packed_model_class() is PackedErnieForSequenceClassification
    assert get_task("ner").packed_model_class() is PackedErnieForTokenClassification
    with pytest.raises(NotImplementedError, match="qa does not pack"):
        get_task("qa").packed_model_class()
