"""tools/plot_curves.py: VisualDL logs of a (resumed) run -> merged curves -> PNG."""

from __future__ import annotations

import time

import pytest

from ernie1.common.errors import ToolkitError, run_cli
from tools import plot_curves


def write_run(run_dir, steps, offset=0.0):
    from visualdl import LogWriter

    with LogWriter(logdir=str(run_dir)) as writer:
        for step in steps:
            writer.add_scalar("train/loss", 10.0 - step / 10 + offset, step)
            writer.add_scalar("train/learning_rate", 1e-4 * step, step)
        writer.add_scalar("valid/loss", 9.0 + offset, steps[-1])


def test_resumed_runs_merge_by_step_and_png_is_written(tmp_path, capsys):
    write_run(tmp_path / "out" / "runs" / "first", [1, 2, 3, 4])
    time.sleep(0.05)
    write_run(tmp_path / "out" / "runs" / "second", [4, 5, 6], offset=0.5)
    curves = plot_curves.read_scalars(plot_curves.find_log_files(str(tmp_path / "out")), ("train/loss", "valid/loss"))
    assert [step for step, _ in curves["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert curves["train/loss"][3][1] == pytest.approx(10.0 - 0.4 + 0.5)  # the resumed run wins on step 4
    assert curves["valid/loss"] == [(4, 9.0), (6, 9.5)]
    output = tmp_path / "curves.png"
    assert run_cli(plot_curves.main, ["--log_dir", str(tmp_path / "out"), "--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {output} (3 curves, up to step 6)\n"


def test_no_logs_is_a_one_line_error(tmp_path):
    with pytest.raises(ToolkitError, match="no VisualDL log"):
        plot_curves.find_log_files(str(tmp_path))


def test_metrics_jsonl_gives_the_quality_panel_and_the_baseline(tmp_path, capsys):
    import json

    records = [
        {"split": "start", "step": 0, "unigram_masked_accuracy": 0.04, "unigram_lm_loss": 7.3},
        {"split": "train", "step": 1, "loss": 10.0, "learning_rate": 1e-4},
        {"split": "train", "step": 2, "loss": 9.0, "learning_rate": 2e-4},
        {"split": "valid", "step": 2, "loss": 9.5, "masked_accuracy": 0.05, "sop_accuracy": 0.6, "token_cosine": 0.4},
        # A resumed run appends; the later record of a step wins.
        {"split": "start", "step": 2, "unigram_masked_accuracy": 0.04},
        {"split": "train", "step": 2, "loss": 8.5, "learning_rate": 2e-4},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    curves = plot_curves.read_curves(str(tmp_path))
    assert curves["train/loss"] == [(1, 10.0), (2, 8.5)]
    assert curves["valid/masked_accuracy"] == [(2, 0.05)] and curves["valid/token_cosine"] == [(2, 0.4)]
    assert curves["baseline/unigram_masked_accuracy"] == [(0, 0.04), (2, 0.04)]
    output = tmp_path / "curves.png"
    assert run_cli(plot_curves.main, ["--log_dir", str(tmp_path), "--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {output} (7 curves, up to step 2)\n"
