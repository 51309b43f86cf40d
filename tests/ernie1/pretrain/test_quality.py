"""Quality figures: exact masked/SOP accuracy and token cosine on a hand-built batch, the unigram baseline by hand,
and the same sums from a static program as from dygraph."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ernie1.pretrain.quality import (
    QUALITY_SUM_NAMES,
    dataset_unigram_baseline,
    lm_perplexity,
    quality_sums,
    reference_token_cosine,
    summarize,
    unigram_baseline,
)

# Two sequences of length 3 and 2, padded to 3: the padded token's state must not count.
STATES = np.array(
    [
        [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],  # pairwise cosines 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2/3
        [[2.0, 0.0], [3.0, 0.0], [0.0, 5.0]],  # real tokens 0 and 1 point the same way: cosine 1
    ],
    dtype="float32",
)
MASK = np.array([[[[0.0, 0.0, 0.0]]], [[[0.0, 0.0, -1e4]]]], dtype="float32")
# Five masked predictions over a vocab of 4 (argmax 2, 1, 3, 0, 0) plus three padding rows (label -1).
SCORES = np.array(
    [[0, 0, 9, 0], [0, 9, 0, 0], [0, 0, 0, 9], [9, 0, 0, 0], [9, 0, 0, 0], [9, 0, 0, 0], [0, 9, 0, 0], [0, 0, 9, 0]],
    dtype="float32",
)
LABELS = np.array([[2], [1], [0], [0], [3], [-1], [-1], [-1]], dtype="int64")  # 3 of 5 right
SOP_SCORES = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
SOP_LABELS = np.array([[0], [0]], dtype="int64")  # 1 of 2 right


def _sums(binary_head=True):
    tensors = [paddle.to_tensor(value) for value in (SCORES, SOP_SCORES, STATES, LABELS, SOP_LABELS, MASK)]
    if not binary_head:
        tensors[1] = tensors[4] = None
    return dict(zip(QUALITY_SUM_NAMES, (float(v) for v in quality_sums(*tensors).numpy())))


def test_exact_figures_on_a_hand_built_batch():
    sums = _sums()
    expected_cosine = (math.sqrt(2) / 3 + 1.0) / 2
    assert sums == pytest.approx(
        {
            "masked_correct": 3,
            "masked_count": 5,
            "sop_correct": 1,
            "sop_count": 2,
            "cosine_sum": expected_cosine * 2,
            "sequence_count": 2,
        },
        rel=1e-6,
    )
    figures = summarize(sums, lm_loss=2.0)
    assert figures == pytest.approx(
        {"masked_accuracy": 0.6, "lm_perplexity": math.exp(2.0), "sop_accuracy": 0.5, "token_cosine": expected_cosine},
        rel=1e-6,
    )
    assert reference_token_cosine(STATES, [3, 2]) == pytest.approx(expected_cosine, rel=1e-6)


def test_without_the_sop_head_there_is_no_sop_accuracy():
    figures = summarize(_sums(binary_head=False), lm_loss=1.0)
    assert figures["sop_accuracy"] is None and figures["masked_accuracy"] == pytest.approx(0.6)


def test_collapsed_states_have_cosine_one_and_random_ones_near_zero():
    rng = np.random.RandomState(0)
    collapsed = np.repeat(rng.randn(4, 1, 32), 16, axis=1).astype("float32")
    spread = rng.randn(4, 16, 32).astype("float32")
    mask = np.zeros((4, 1, 1, 16), dtype="float32")
    for states, expected in ((collapsed, 1.0), (spread, reference_token_cosine(spread, [16] * 4))):
        zeros = paddle.zeros([8, 4])
        sums = quality_sums(
            zeros, None, paddle.to_tensor(states), paddle.full([8, 1], -1, "int64"), None, paddle.to_tensor(mask)
        ).numpy()
        assert sums[4] / sums[5] == pytest.approx(expected, abs=1e-5)
    assert abs(reference_token_cosine(spread, [16] * 4)) < 0.1


def test_perplexity_is_capped():
    assert lm_perplexity(1.0) == pytest.approx(math.e)
    assert lm_perplexity(1e9) == pytest.approx(math.exp(50.0))


def test_unigram_baseline_equals_a_hand_computation():
    # Train labels: token 1 x3, token 2 x1 over a vocab of 4; smoothing 0.5: p = (c + 0.5) / (4 + 2).
    baseline = unigram_baseline(np.array([1, 1, 2, 1]), np.array([1, 3, 2, 1]), vocab_size=4, smoothing=0.5)
    p = {1: 3.5 / 6, 2: 1.5 / 6, 3: 0.5 / 6}
    expected_loss = -(2 * math.log(p[1]) + math.log(p[3]) + math.log(p[2])) / 4
    assert baseline.lm_loss == pytest.approx(expected_loss, rel=1e-12)
    assert (baseline.masked_accuracy, baseline.top_token_id) == (0.5, 1)
    assert (baseline.train_labels, baseline.valid_labels) == (4, 4)


def test_dataset_baseline_reads_a_bounded_number_of_samples():
    train = [{"masked_labels": np.array([1, 1])}, {"masked_labels": np.array([2])}, {"masked_labels": np.array([2])}]
    valid = [{"masked_labels": np.array([1])}, {"masked_labels": np.array([2, 2])}]
    # The first two train samples only: 1 is the most frequent, 1 of the 3 valid labels is 1.
    baseline = dataset_unigram_baseline(train, valid, 4, train_samples=2)
    assert (baseline.train_labels, baseline.top_token_id, baseline.masked_accuracy) == (3, 1, pytest.approx(1 / 3))
    assert dataset_unigram_baseline(train, None, 4) is None


def test_static_program_sums_equal_dygraph():
    paddle.enable_static()
    try:
        program, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(program, startup):
            names = ("scores", "sop", "states", "labels", "sop_labels", "mask")
            arrays = (SCORES, SOP_SCORES, STATES, LABELS, SOP_LABELS, MASK)
            feeds = [
                paddle.static.data(name, [-1] * value.ndim, str(value.dtype)) for name, value in zip(names, arrays)
            ]
            sums = quality_sums(*feeds)
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        [static] = exe.run(program, feed=dict(zip(names, arrays)), fetch_list=[sums])
    finally:
        paddle.disable_static()
    assert np.asarray(static) == pytest.approx(np.array(list(_sums().values())), rel=1e-6)
