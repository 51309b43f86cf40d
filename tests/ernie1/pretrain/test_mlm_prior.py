"""The MLM decoder bias of a fresh model starts at the centred log unigram prior (--mlm_bias_init, issue 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle
import pytest

import run_pretrain
import run_pretrain_static
import run_pretrain_trainer
from args import parse_pretraining_args
from ernie1.pretrain.data import build_collate_fn, build_datasets, load_pretraining_tokenizer
from ernie1.pretrain.masked_lm import load_masked_lm, read_checkpoint_state
from ernie1.pretrain.mlm_prior import MLM_BIAS_KEY, centred_log_prior, train_token_counts
from ernie1.pretrain.model import forward_with_states
from tests.ernie1.pretrain.helpers import tiny_argv, trainer_argv

# Learning rate 0: the saved model_last holds the weights the run started with.
FROZEN = dict(max_lr=0, min_lr=0, max_steps=1, eval_freq=0, checkpoint_steps=1)


def test_the_centred_log_prior_is_log_frequency_up_to_a_shift():
    counts = np.array([0, 1, 3, 96])
    prior = centred_log_prior(counts, smoothing=0.5)
    assert prior.dtype == np.float32
    assert abs(float(prior.mean())) < 1e-6
    expected = np.log((counts + 0.5) / (counts.sum() + 0.5 * len(counts)))
    np.testing.assert_allclose(prior - prior[0], expected - expected[0], rtol=1e-6)


def _train_split_prior(argv):
    config = parse_pretraining_args(argv, world_size=1)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    train, valid, _ = build_datasets(config, tokenizer)
    vocab_size = int(tokenizer.vocab_size)
    return centred_log_prior(train_token_counts(train, vocab_size)), train, valid, tokenizer


def _saved_bias(directory) -> np.ndarray:
    _, state, _ = read_checkpoint_state(str(directory))
    return np.asarray(state[MLM_BIAS_KEY], dtype=np.float32)


def test_train_token_counts_are_the_split_tokens_with_their_word_marks_restored(tmp_path, tiny_prefix, vocab_path):
    argv = tiny_argv(tiny_prefix, str(tmp_path / "out"), str(vocab_path))
    config = parse_pretraining_args(argv, world_size=1)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    train, _, _ = build_datasets(config, tokenizer)
    counts = train_token_counts(train, tokenizer.vocab_size)
    mapping = np.asarray(train.samples_mapping)
    pointers = train.indexed.pointers
    ids = np.asarray(train.indexed.ids[pointers[mapping[:, 0].min()] : pointers[mapping[:, 1].max()]])
    assert counts.sum() == len(ids) and counts.sum() < len(train.indexed.ids)  # the train documents only
    restored = train.vocab.restore(ids)
    np.testing.assert_array_equal(counts, np.bincount(restored, minlength=tokenizer.vocab_size))
    # The corpus marks whole words with `##<CJK char>` ids; the labels (and so the counts) are the plain characters.
    marked = np.unique(ids[train.vocab.is_continuation[ids]])
    marked = marked[train.vocab.restore_char[marked] != marked]
    assert len(marked) > 10 and not counts[marked].any()
    assert counts[tokenizer.cls_token_id] == counts[tokenizer.mask_token_id] == 0


def test_a_fresh_model_starts_with_its_mlm_logits_at_the_unigram_prior(tmp_path, tiny_prefix, vocab_path):
    """Step 0 of a fresh run: the bias is the centred log prior, so the logits sit at it (up to the small random
    h.E term) and the valid loss starts at the unigram baseline's instead of ln(vocab)."""
    out = tmp_path / "out"
    argv = tiny_argv(
        tiny_prefix, str(out), str(vocab_path), **FROZEN, hidden_dropout_prob=0, attention_probs_dropout_prob=0
    )
    assert run_pretrain.main(argv) == 0
    # The same train split, with a valid split to score (the frozen run evaluates nothing).
    prior, _, valid, tokenizer = _train_split_prior(
        tiny_argv(tiny_prefix, str(tmp_path / "x"), str(vocab_path), max_steps=1)
    )
    np.testing.assert_allclose(_saved_bias(out / "model_last"), prior, atol=1e-6)

    masked_lm = load_masked_lm(str(out / "model_last"))
    samples = [valid[index] for index in range(min(16, len(valid)))]
    batch = {k: paddle.to_tensor(v) for k, v in build_collate_fn(64, tokenizer.pad_token_id)(samples).items()}
    with paddle.no_grad():
        scores, _, _ = forward_with_states(masked_lm.model, batch)
    logits = scores.numpy()
    centred = logits - logits.mean(axis=1, keepdims=True)
    assert np.abs(centred - prior).mean() < 0.2
    assert np.corrcoef(centred.mean(axis=0), prior)[0, 1] > 0.99
    labels = batch["masked_lm_labels"].numpy().reshape(-1)
    labels = labels[labels != -1]
    log_softmax = centred - np.log(np.exp(centred).sum(axis=1, keepdims=True))
    loss = float(-log_softmax[np.flatnonzero(batch["masked_lm_labels"].numpy().reshape(-1) != -1), labels].mean())
    prior_loss = float(-(prior - np.log(np.exp(prior).sum()))[labels].mean())
    assert abs(loss - prior_loss) < 0.2, (loss, prior_loss)
    assert loss < np.log(len(prior)) - 2.0, loss  # a zero bias starts near ln(vocab)


def test_zeros_keeps_paddlenlps_zero_bias(tmp_path, tiny_prefix, vocab_path):
    out = tmp_path / "out"
    argv = tiny_argv(tiny_prefix, str(out), str(vocab_path), **FROZEN, mlm_bias_init="zeros")
    assert run_pretrain.main(argv) == 0
    assert not _saved_bias(out / "model_last").any()


def test_a_warm_start_and_a_resume_keep_the_checkpoints_bias(tmp_path, tiny_prefix, vocab_path):
    first = tmp_path / "first"
    assert run_pretrain.main(tiny_argv(tiny_prefix, str(first), str(vocab_path), **FROZEN, mlm_bias_init="zeros")) == 0
    # Warm start from a checkpoint directory: its (zero) bias is loaded, not replaced by the prior.
    warm = tmp_path / "warm"
    argv = tiny_argv(tiny_prefix, str(warm), str(vocab_path), **FROZEN)
    argv[argv.index("--model_name_or_path") + 1] = str(first / "model_last")
    assert run_pretrain.main(argv) == 0
    assert not _saved_bias(warm / "model_last").any()
    # Resume in the same output_dir, now with the default (unigram): the checkpoint's bias continues.
    resumed = tiny_argv(tiny_prefix, str(first), str(vocab_path), **{**FROZEN, "max_steps": 2})
    assert run_pretrain.main(resumed) == 0
    assert not _saved_bias(first / "model_last").any()


@pytest.mark.parametrize("init", ["unigram", "zeros"])
def test_the_static_entry_point_takes_the_flag(tmp_path, tiny_prefix, vocab_path, init):
    out = tmp_path / "out"
    argv = tiny_argv(tiny_prefix, str(out), str(vocab_path), **FROZEN, mlm_bias_init=init)
    assert run_pretrain_static.main(argv) == 0
    expected = _train_split_prior(argv)[0] if init == "unigram" else 0.0
    np.testing.assert_allclose(_saved_bias(out / "model_last"), expected, atol=1e-6)


@pytest.mark.parametrize("init", ["unigram", "zeros"])
def test_the_trainer_entry_point_takes_the_flag(tmp_path, tiny_prefix, vocab_path, init):
    out = tmp_path / "out"
    corpus = str(Path(tiny_prefix).parent)
    argv = trainer_argv(
        corpus,
        str(out),
        str(vocab_path),
        do=("train",),
        max_steps=1,
        learning_rate=0,
        min_learning_rate=0,
        mlm_bias_init=init,
    )
    assert run_pretrain_trainer.main(argv) == 0
    expected = 0.0
    if init == "unigram":
        expected = _train_split_prior(tiny_argv(corpus, str(tmp_path / "x"), str(vocab_path), max_steps=1))[0]
    np.testing.assert_allclose(_saved_bias(out), expected, atol=1e-6)


def test_a_static_continue_training_keeps_the_loaded_bias(tmp_path, tiny_prefix, vocab_path):
    first = tmp_path / "first"
    assert run_pretrain.main(tiny_argv(tiny_prefix, str(first), str(vocab_path), **FROZEN, mlm_bias_init="zeros")) == 0
    warm = tmp_path / "warm"
    argv = tiny_argv(tiny_prefix, str(warm), str(vocab_path), "--continue_training", "true", **FROZEN)
    argv[argv.index("--model_name_or_path") + 1] = str(first / "model_last")
    assert run_pretrain_static.main(argv) == 0
    assert not _saved_bias(warm / "model_last").any()
