"""benchmarks/bench_pretraining_payoff.py --quick: pretrain, fine-tune both starting points, print the table."""

from __future__ import annotations

import re

import pytest

from benchmarks import bench_pretraining_payoff as bench  # a namespace package: the repository root is on sys.path


@pytest.mark.slow
def test_quick_mode_prints_the_payoff_table_with_the_checkpoints_figures(tmp_path, capsys):
    assert bench.main(["--quick", "--work_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        match = re.fullmatch(r"\| (pretrained|random init) \| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \|", line)
        if match:
            rows[match[1]] = [float(value) for value in match.groups()[1:]]
    assert set(rows) == {"pretrained", "random init"}, out
    for accuracy, sd, f1, f1_sd in rows.values():
        assert 0.0 < accuracy <= 1.0 and 0.0 <= f1 <= 1.0 and sd == f1_sd == 0.0  # one seed
    assert re.search(r"pretrained, step 8: valid masked acc 0\.\d{4} vs unigram baseline 0\.\d{4}, lm_loss", out), out
    # The twin has the checkpoint's architecture and tokenizer, fresh weights.
    twin, checkpoint = tmp_path / "random_init_1", tmp_path / "pretrain" / "model_last"
    assert (twin / "model_config.json").read_text() == (checkpoint / "model_config.json").read_text()
    assert (twin / "vocab.txt").read_bytes() == (checkpoint / "vocab.txt").read_bytes()


def test_render_names_each_checkpoint_and_says_when_figures_are_missing():
    scores = {"pretrained a/model_last": {"sentiment": [0.8, 0.9]}, "random init": {"sentiment": [0.7]}}
    text = bench.render(scores, ["sentiment"], {"pretrained a/model_last": None})
    assert "| pretrained a/model_last | 0.850 ± 0.071 |" in text
    assert "| random init | 0.700 ± 0.000 |" in text
    assert "pretrained a/model_last: no metrics.jsonl next to it (figures unknown)" in text
