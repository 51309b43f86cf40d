"""The static step against the dygraph step: same weights, batches and optimizer -> same losses and updates."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieConfig

from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig
from ernie1.pretrain.engines.static_program import (
    build_static_programs,
    create_executor,
    feed_for,
    initialize_parameters,
    position_ids_for,
    train_step,
)
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.model import PretrainingCriterion, build_pretraining_model, forward_pretraining
from ernie1.pretrain.optim import build_optimizer

VOCAB, BATCH, SEQ_LEN, MASKED = 97, 2, 12, 8


def batch(seed: int) -> dict:
    rng = np.random.RandomState(seed)
    input_ids = rng.randint(1, VOCAB, (BATCH, SEQ_LEN)).astype("int64")
    attention_mask = np.zeros((BATCH, 1, 1, SEQ_LEN), "float32")
    attention_mask[0, ..., -2:] = -1e4
    positions = np.sort(rng.choice(BATCH * SEQ_LEN, MASKED, replace=False)).astype("int32")
    labels = input_ids.reshape(-1)[positions].reshape(-1, 1).copy()
    labels[-2:] = -1  # the multiple-of-8 padding rows
    return {
        "input_ids": input_ids,
        "token_type_ids": np.zeros((BATCH, SEQ_LEN), "int64"),
        "attention_mask": attention_mask,
        "masked_positions": positions,
        "masked_lm_labels": labels,
        "next_sentence_labels": rng.randint(0, 2, (BATCH, 1)).astype("int64"),
    }


def make_config(accumulate_steps: int) -> PretrainConfig:
    return PretrainConfig(
        model=ModelConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        optim=OptimConfig(max_lr=1e-2, min_lr=1e-3, warmup_steps=1, decay_steps=4, weight_decay=0.01, grad_clip=0.5),
        schedule=ScheduleConfig(
            global_batch_size=BATCH * accumulate_steps, micro_batch_size=BATCH, accumulate_steps=accumulate_steps
        ),
        runtime=RuntimeConfig(device="cpu"),
    )


ERNIE = ErnieConfig(
    vocab_size=VOCAB,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=SEQ_LEN,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def run_static(config, steps):
    """(initial {static name: array}, per-step metrics, final arrays, name map)."""
    paddle.enable_static()
    try:
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            programs = build_static_programs(config, ERNIE)
            exe = create_executor("cpu")
            initialize_parameters(exe, programs, seed=3, rank=0)
            names = sorted(set(programs.name_map.values()))

            def snapshot():
                return {name: np.array(scope.find_var(name).get_tensor()) for name in names}

            initial = snapshot()
            metrics = [train_step(exe, programs, micro_batches) for micro_batches in steps]
            return initial, metrics, snapshot(), programs.name_map
    finally:
        paddle.disable_static()


def run_dygraph(config, steps, initial, name_map):
    """The dygraph loop's step (loss / accumulate_steps per micro-batch, one update), from the same weights."""
    model = build_pretraining_model(ERNIE)
    model.set_state_dict({key: paddle.to_tensor(initial[static]) for key, static in name_map.items()})
    scheduler = build_lr_scheduler(config.optim)
    optimizer = build_optimizer(config.optim, model, scheduler)
    criterion = PretrainingCriterion()
    losses = []
    for micro_batches in steps:
        total = 0.0
        for micro in micro_batches:
            tensors = {key: paddle.to_tensor(value) for key, value in micro.items()}
            loss = criterion(
                *forward_pretraining(model, tensors), tensors["masked_lm_labels"], tensors["next_sentence_labels"]
            )[0]
            (loss / len(micro_batches)).backward()
            total += float(loss)
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        losses.append(total / len(micro_batches))
    return losses, {key: value.numpy() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("accumulate_steps", [1, 2])
def test_static_steps_match_dygraph_steps(accumulate_steps):
    config = make_config(accumulate_steps)
    steps = [[batch(10 * step + micro) for micro in range(accumulate_steps)] for step in range(3)]
    initial, metrics, final, name_map = run_static(config, steps)
    dygraph_losses, dygraph_final = run_dygraph(config, steps, initial, name_map)
    # Same math, different kernels and summation order: equal to float32 rounding, not bit for bit.
    np.testing.assert_allclose([m["loss"] for m in metrics], dygraph_losses, rtol=1e-5)
    assert [m["learning_rate"] for m in metrics] == pytest.approx([0.0, 1e-2, 7e-3], abs=1e-12)
    for key, static_name in name_map.items():
        np.testing.assert_allclose(final[static_name], dygraph_final[key], atol=2e-6, rtol=1e-4, err_msg=key)
    # The updates were real: weights moved by far more than the tolerance.
    moved = max(np.abs(final[name] - initial[name]).max() for name in initial)
    assert moved > 1e-3


def test_feed_adds_position_ids_and_uses_the_program_names():
    micro = batch(0)
    names = {key: key + "_micro1" for key in ("input_ids", "position_ids", "masked_lm_labels")}
    feed = feed_for(micro, names)
    assert sorted(feed) == ["input_ids_micro1", "masked_lm_labels_micro1", "position_ids_micro1"]
    np.testing.assert_array_equal(feed["position_ids_micro1"], np.tile(np.arange(SEQ_LEN), (BATCH, 1)))
    assert position_ids_for(np.zeros((3, 5), "int64")).dtype == np.int64
