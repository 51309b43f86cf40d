"""ernie1/tasks/heads.py: the token loss averages over labelled positions only; a fresh head starts at the prior."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieConfig, ErnieForSequenceClassification, ErnieForTokenClassification

from ernie1.tasks.heads import (
    IGNORE_INDEX,
    init_head_bias_to_prior,
    is_fresh_head,
    label_counts,
    labelled_mean_cross_entropy,
    log_prior,
)
from ernie1.tasks.packing import EVERY_TOKEN, PackedErnieForTokenClassification, PackingCollator

TINY = dict(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def test_token_loss_is_the_mean_over_labelled_positions_not_over_all_positions():
    probabilities = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7]], dtype="float32")
    logits = paddle.to_tensor(np.log(probabilities))
    labels = paddle.to_tensor(np.array([0, IGNORE_INDEX, IGNORE_INDEX, 1], dtype="int64"))
    labelled_mean = (-np.log(0.5) - np.log(0.7)) / 2
    all_positions_mean = (-np.log(0.5) - np.log(0.7)) / 4
    assert float(labelled_mean_cross_entropy(logits, labels)) == pytest.approx(labelled_mean, rel=1e-6)
    # What paddle's own mean gives with ignore_index=-100 (the bug this loss replaces): a quarter of the positions
    # labelled, so the loss is half as large as it should be.
    assert float(paddle.nn.CrossEntropyLoss()(logits, labels)) == pytest.approx(all_positions_mean, rel=1e-6)


def test_token_loss_of_a_batch_without_labels_is_zero_and_batched_shapes_work():
    logits = paddle.randn([2, 3, 5])
    assert float(labelled_mean_cross_entropy(logits, paddle.full([2, 3], IGNORE_INDEX, dtype="int64"))) == 0.0
    labels = paddle.to_tensor(np.array([[1, IGNORE_INDEX, 4], [IGNORE_INDEX, 0, IGNORE_INDEX]], dtype="int64"))
    picked = [logits[0, 0], logits[0, 2], logits[1, 1]]
    expected = np.mean([float(paddle.nn.functional.cross_entropy(row[None], paddle.to_tensor([t]))) for row, t in
                        zip(picked, [1, 4, 0])])  # fmt: skip
    assert float(labelled_mean_cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-5)


def test_packed_token_model_uses_the_labelled_mean():
    paddle.seed(0)
    model = PackedErnieForTokenClassification(ErnieConfig(**TINY, num_labels=3))
    model.eval()
    features = [
        {"input_ids": [1, 5, 6, 7, 2], "token_type_ids": [0] * 5, "labels": [IGNORE_INDEX, 0, 1, 2, IGNORE_INDEX]},
        {"input_ids": [1, 8, 2], "token_type_ids": [0] * 3, "labels": [IGNORE_INDEX, 1, IGNORE_INDEX]},
    ]
    batch = PackingCollator(16, 0, readout=EVERY_TOKEN)(features)
    labels = batch["labels"]
    loss, logits = model(**batch)
    assert float(loss) == pytest.approx(float(labelled_mean_cross_entropy(logits, labels)), rel=1e-6)
    assert float(loss) > 1.5 * float(paddle.nn.CrossEntropyLoss()(logits.reshape([-1, 3]), labels.reshape([-1])))


def test_label_counts_read_class_ids_and_token_labels():
    assert label_counts([{"labels": 1}, {"labels": 0}, {"labels": 1}], 3).tolist() == [1, 2, 0]
    tokens = [{"labels": [IGNORE_INDEX, 2, 2, IGNORE_INDEX]}, {"labels": [0, IGNORE_INDEX, 2]}]
    assert label_counts(tokens, 3).tolist() == [1, 0, 3]


def test_log_prior_is_smoothed_and_normalised():
    prior = np.exp(log_prior([3, 0, 1]))
    assert prior.sum() == pytest.approx(1.0)
    assert prior.tolist() == pytest.approx([4 / 7, 1 / 7, 2 / 7])


@pytest.mark.parametrize("model_class", [ErnieForTokenClassification, ErnieForSequenceClassification])
def test_fresh_head_starts_at_the_log_prior(model_class):
    paddle.seed(1)
    model = model_class(ErnieConfig(**TINY, num_labels=3))
    model.eval()
    counts = [90, 6, 4]
    assert is_fresh_head(model.classifier)
    assert init_head_bias_to_prior(model.classifier, counts)
    assert model.classifier.bias.numpy() == pytest.approx(log_prior(counts), rel=1e-6)
    # At step 0 the predicted distribution is the prior (the random 0.02-std weights add only small deviations)...
    ids = paddle.to_tensor(np.random.RandomState(0).randint(1, 300, (4, 9)))
    logits = model(ids)
    probabilities = paddle.nn.functional.softmax(logits, axis=-1).numpy().reshape(-1, 3)
    assert probabilities.mean(axis=0) == pytest.approx(np.exp(log_prior(counts)), abs=0.02)
    # ... and the argmax is the majority class everywhere.
    assert (probabilities.argmax(axis=-1) == 0).all()


def test_loaded_head_is_left_untouched():
    paddle.seed(2)
    model = ErnieForTokenClassification(ErnieConfig(**TINY, num_labels=3))
    trained_bias = np.array([0.3, -0.1, 0.2], dtype="float32")
    model.classifier.bias.set_value(trained_bias)
    assert not is_fresh_head(model.classifier)
    assert not init_head_bias_to_prior(model.classifier, [90, 6, 4])
    assert model.classifier.bias.numpy().tolist() == pytest.approx(trained_bias.tolist())
