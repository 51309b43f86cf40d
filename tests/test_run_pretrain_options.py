"""The three entry points with --attention_impl paddle|sdpa, the quality figures at every evaluation in every output
(console, metrics.jsonl, VisualDL), the unigram baseline at start, and a resume that switches the attention."""

from __future__ import annotations

import shutil

import pytest

import run_pretrain
import run_pretrain_static
import run_pretrain_trainer
from ernie1.common.errors import run_cli
from ernie1.pretrain.metrics_logger import read_metrics
from ernie1.pretrain.quality import QUALITY_NAMES
from tests.ernie1.pretrain.helpers import tiny_argv, trainer_argv
from tools import plot_curves

ENTRIES = {"dygraph": run_pretrain, "static": run_pretrain_static, "trainer": run_pretrain_trainer}


def _argv(entry, prefix, out, vocab, **flags):
    if entry == "trainer":
        return trainer_argv(prefix, str(out), str(vocab), max_steps=2, eval_steps=2, save_steps=2, **flags)
    return tiny_argv(prefix, str(out), str(vocab), max_steps=2, eval_freq=2, **flags)


@pytest.mark.parametrize("attention_impl", ["paddle", "sdpa"])
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_each_entry_point_logs_its_attention_and_the_quality_figures(
    entry, attention_impl, tmp_path, tiny_prefix, vocab_path, capsys
):
    out = tmp_path / "out"
    argv = _argv(entry, tiny_prefix, out, vocab_path, attention_impl=attention_impl)
    assert ENTRIES[entry].main(argv) == 0
    console = capsys.readouterr().out
    assert f"attention_impl: {attention_impl}, precision: fp32" in console
    [start] = read_metrics(str(out), "start")
    assert (start["step"], start["attention_impl"], start["precision"]) == (0, attention_impl, "fp32")
    # The tiny corpus' baseline: a constant predictor is far below chance-free figures.
    assert 0.0 < start["unigram_masked_accuracy"] < 0.2 and 5.0 < start["unigram_lm_loss"] < 10.0
    assert (
        f"unigram baseline on valid: lm_loss {start['unigram_lm_loss']:.4f}, "
        f"masked acc {start['unigram_masked_accuracy']:.4f}" in console
    )
    for split in ("valid", "test"):
        [record] = read_metrics(str(out), split)
        assert set(QUALITY_NAMES) <= set(record), record
        assert 0.0 <= record["masked_accuracy"] <= 1.0 and 0.0 <= record["sop_accuracy"] <= 1.0
        assert -1.0 <= record["token_cosine"] <= 1.0
        assert record["lm_perplexity"] == pytest.approx(2.718281828459045 ** record["lm_loss"], rel=1e-6)
        line = next(text for text in console.splitlines() if f"{split} step 2," in text)
        for name in ("masked_acc", "lm_ppl", "sop_acc", "token_cos"):
            assert f", {name}: " in line, line
    if entry != "trainer":
        curves = plot_curves.read_scalars(
            plot_curves.find_log_files(str(out)), ("valid/masked_accuracy", "baseline/unigram_masked_accuracy")
        )
        assert [step for step, _ in curves["valid/masked_accuracy"]] == [2]
        assert curves["baseline/unigram_masked_accuracy"][0][1] == pytest.approx(start["unigram_masked_accuracy"])


@pytest.mark.parametrize("first,second", [("paddle", "sdpa"), ("sdpa", "paddle")])
def test_a_checkpoint_of_one_attention_continues_with_the_other(first, second, tmp_path, tiny_prefix, vocab_path):
    straight, switched = tmp_path / "straight", tmp_path / "switched"
    common = dict(max_steps=4, eval_freq=4, save_steps=2, checkpoint_steps=1000)
    assert (
        run_pretrain.main(tiny_argv(tiny_prefix, str(straight), str(vocab_path), attention_impl=first, **common)) == 0
    )
    switched.mkdir()
    shutil.copytree(straight / "model_2", switched / "model_last")
    argv = tiny_argv(tiny_prefix, str(switched), str(vocab_path), attention_impl=second, **common)
    assert run_pretrain.main(argv) == 0
    [start] = read_metrics(str(switched), "start")
    assert (start["step"], start["attention_impl"]) == (2, second)
    # On CPU both implementations run the same kernels: the continued run is exact.
    losses = [(record["step"], record["loss"]) for record in read_metrics(str(switched))]
    assert losses == [(record["step"], record["loss"]) for record in read_metrics(str(straight))][2:]
    assert read_metrics(str(switched), "valid") == read_metrics(str(straight), "valid")


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            "dygraph",
            "error: argument --attention_impl: invalid choice: 'flash' (choose from 'auto', 'paddle', 'sdpa')",
        ),
        ("static", "error: argument --attention_impl: invalid choice: 'flash' (choose from 'auto', 'paddle', 'sdpa')"),
        ("trainer", "error: --attention_impl must be one of auto, paddle, sdpa, got 'flash'"),
    ],
)
def test_a_bad_attention_impl_is_one_line_naming_the_flag(entry, message, tmp_path, tiny_prefix, vocab_path, capsys):
    argv = _argv(entry, tiny_prefix, tmp_path / "out", vocab_path, attention_impl="flash")
    assert run_cli(ENTRIES[entry].main, argv) == 2
    assert capsys.readouterr().err == message + "\n"
