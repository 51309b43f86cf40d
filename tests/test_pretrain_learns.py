"""Does pretraining learn more than token frequencies? The quality figures against the unigram baseline (issue 9)."""

from __future__ import annotations

import paddle
import pytest

import run_pretrain_static
from args import parse_pretraining_args
from ernie1.pretrain.data import build_collate_fn, build_datasets, load_pretraining_tokenizer
from ernie1.pretrain.engines.dygraph import DygraphEngine
from ernie1.pretrain.metrics_logger import read_metrics
from ernie1.pretrain.model import build_checked_ernie_config
from ernie1.pretrain.quality import unigram_baseline
from ernie1.pretrain.runtime import Placement
from tests.ernie1.pretrain.helpers import tiny_argv

NO_DROPOUT = dict(hidden_dropout_prob=0, attention_probs_dropout_prob=0)


def test_a_memorised_batch_beats_the_unigram_baseline_by_far(tmp_path, tiny_prefix, vocab_path):
    """The labels are aligned with the predictions and the accuracy counts what the model predicts: 120 steps on one
    batch drive its masked-token accuracy far above what token frequencies give."""
    argv = tiny_argv(
        tiny_prefix, str(tmp_path), str(vocab_path), max_lr=1e-3, min_lr=1e-3, warmup_rate=0, **NO_DROPOUT
    )
    config = parse_pretraining_args(argv + ["--micro_batch_size", "8"], world_size=1)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    engine = DygraphEngine(
        config, Placement("cpu", 1, 0, 0, 0, 1), tokenizer, build_checked_ernie_config(config, tokenizer.vocab_size)
    )
    train, _, _ = build_datasets(config, tokenizer)
    samples = [train[index] for index in range(8)]
    batch = {k: paddle.to_tensor(v) for k, v in build_collate_fn(64, tokenizer.pad_token_id)(samples).items()}
    engine.set_training(False)
    before = engine.evaluate_step(batch)
    engine.set_training(True)
    for _ in range(120):
        engine.step([batch])
    engine.set_training(False)
    after = engine.evaluate_step(batch)
    labels = batch["masked_lm_labels"].numpy().reshape(-1)
    labels = labels[labels != -1]
    baseline = unigram_baseline(labels, labels, tokenizer.vocab_size)
    assert before["masked_correct"] / before["masked_count"] < baseline.masked_accuracy
    assert after["masked_correct"] / after["masked_count"] > max(0.9, baseline.masked_accuracy + 0.5)
    assert after["lm_loss"] < baseline.lm_loss - 3.0


@pytest.mark.slow
def test_a_few_hundred_steps_beat_the_unigram_baseline_on_the_valid_split(tmp_path, tiny_prefix, vocab_path):
    """Issue 9: with the MLM decoder bias starting at the unigram prior (--mlm_bias_init unigram, the default) the
    encoder learns context instead of token frequencies. The tiny model trains at the helpers' lr 5e-3 (1e-3 is the
    hidden-128 demo's) with a quarter of the run as warmup (at 10 % seed 1 collapsed to cosine 1.0), and 400 steps:
    valid masked accuracy 0.077 vs a baseline 0.041 (seed 7; seed 1: 0.054 vs 0.032), token cosine 0.18; with
    --mlm_bias_init zeros the same budget stays on the plateau (0.035, cosine 0.997)."""
    out = tmp_path / "out"
    flags = dict(
        max_steps=400, eval_freq=200, eval_iters=16, micro_batch_size=8, max_lr=5e-3, min_lr=1e-4, warmup_rate=0.25
    )
    assert run_pretrain_static.main(tiny_argv(tiny_prefix, str(out), str(vocab_path), **flags, **NO_DROPOUT)) == 0
    [start] = read_metrics(str(out), "start")
    final = read_metrics(str(out), "valid")[-1]
    assert final["masked_accuracy"] > start["unigram_masked_accuracy"] + 0.02, (final, start)
    assert final["lm_loss"] < start["unigram_lm_loss"]
    assert final["token_cosine"] < 0.9
