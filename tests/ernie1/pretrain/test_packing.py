"""--pack_samples: a packed micro-batch gives the unpacked one's MLM loss, SOP loss and gradients (fp32, tiny model)."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieConfig, ErnieForPretraining

from ernie1.data.collate import collate_packed_pretraining_batch, collate_pretraining_batch
from ernie1.pretrain.model import PretrainingCriterion, build_pretraining_model, forward_pretraining
from ernie1.pretrain.packing import PackedErnieForPretraining

SEQ = 32
TINY = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=SEQ,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def masked_sample(rng: np.random.Generator, length: int) -> dict:
    """[CLS] a [SEP] b [SEP] with random tokens, some of them to predict, and a random SOP label."""
    first = int(rng.integers(1, length - 2))
    ids = [1] + rng.integers(5, 120, first).tolist() + [2] + rng.integers(5, 120, length - first - 3).tolist() + [2]
    types = [0] * (first + 2) + [1] * (length - first - 2)
    positions = np.sort(rng.choice(np.arange(1, length - 1), size=max(1, length // 6), replace=False))
    return {
        "input_ids": np.asarray(ids, np.int64),
        "token_type_ids": np.asarray(types, np.int64),
        "masked_positions": positions.astype(np.int64),
        "masked_labels": rng.integers(5, 120, len(positions)).astype(np.int64),
        "sop_label": np.asarray(int(rng.integers(0, 2)), np.int64),
    }


def samples(seed: int = 0):
    rng = np.random.default_rng(seed)
    # Short and long samples, so first-fit puts two or three in a row and leaves some alone.
    return [masked_sample(rng, int(n)) for n in (9, 30, 14, 7, 21, 32, 11, 6)]


def losses_and_grads(model, criterion, batch):
    tensors = {key: paddle.to_tensor(value) for key, value in batch.items()}
    model.clear_gradients()
    scores, sop_scores = forward_pretraining(model, tensors)
    total, lm, sop = criterion(scores, sop_scores, tensors["masked_lm_labels"], tensors["next_sentence_labels"])
    total.backward()
    grads = {name: param.grad.numpy().copy() for name, param in model.named_parameters() if param.grad is not None}
    return float(lm), float(sop), grads


@pytest.mark.parametrize("attention_impl", ["paddle", "sdpa"])
@pytest.mark.parametrize("binary_head", [True, False])
def test_packed_batch_gives_the_unpacked_losses_and_gradients(attention_impl, binary_head):
    paddle.seed(0)
    model = build_pretraining_model(ErnieConfig(**TINY), binary_head, attention_impl, pack_samples=True)
    model.train()  # dropout is 0: train mode only checks that nothing else differs
    criterion = PretrainingCriterion(binary_head)
    batch = samples()
    packed = collate_packed_pretraining_batch(batch, pad_to=SEQ)
    assert packed["input_ids"].shape[0] < len(batch)  # the test packs something
    unpacked_lm, unpacked_sop, unpacked_grads = losses_and_grads(
        model, criterion, collate_pretraining_batch(batch, SEQ)
    )
    packed_lm, packed_sop, packed_grads = losses_and_grads(model, criterion, packed)
    assert packed_lm == pytest.approx(unpacked_lm, abs=1e-5)
    assert packed_sop == pytest.approx(unpacked_sop, abs=1e-5)
    assert (unpacked_sop > 0) == binary_head
    assert sorted(packed_grads) == sorted(unpacked_grads) and len(packed_grads) > 10
    for name, grad in unpacked_grads.items():
        np.testing.assert_allclose(packed_grads[name], grad, atol=1e-5, rtol=1e-4, err_msg=name)


def test_sop_reads_each_samples_cls_not_each_rows_first_token():
    paddle.seed(1)
    model = build_pretraining_model(ErnieConfig(**TINY), pack_samples=True)
    model.eval()
    batch = samples(seed=2)
    tensors = {key: paddle.to_tensor(value) for key, value in collate_packed_pretraining_batch(batch, SEQ).items()}
    _, sop_scores = forward_pretraining(model, tensors)
    assert sop_scores.shape == [len(batch), 2]
    for index, sample in enumerate(batch):
        alone = {key: paddle.to_tensor(value) for key, value in collate_pretraining_batch([sample]).items()}
        _, expected = forward_pretraining(model, alone)
        np.testing.assert_allclose(sop_scores.numpy()[index], expected.numpy()[0], atol=1e-5)


def test_packed_model_has_the_plain_models_parameters():
    paddle.seed(0)
    packed = build_pretraining_model(ErnieConfig(**TINY), pack_samples=True)
    assert isinstance(packed, PackedErnieForPretraining)
    paddle.seed(0)
    plain = build_pretraining_model(ErnieConfig(**TINY))
    assert type(plain) is ErnieForPretraining
    assert {k: v.shape for k, v in packed.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
