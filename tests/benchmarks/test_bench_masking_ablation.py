"""The masking ablation's harness at its --quick size: every stage runs and the table, JSON and PNG come out.

(The quick size checks the harness, not the result: 4 pretraining steps teach nothing.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_masking_ablation import paired_bootstrap

REPO = Path(__file__).resolve().parents[2]


def test_paired_bootstrap_interval_covers_the_mean_difference_and_is_zero_for_equal_scores():
    rng = np.random.RandomState(0)
    a = rng.rand(200)
    mean, low, high = paired_bootstrap(a + 0.1, a, samples=500)
    assert mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    b = (rng.rand(200) > 0.5).astype(float)
    mean, low, high = paired_bootstrap(b, np.zeros(200), samples=500)
    assert low < mean < high and mean == pytest.approx(b.mean())


@pytest.mark.slow
def test_quick_run_writes_the_table_the_json_and_the_figure(tmp_path):
    figures, png = tmp_path / "figures.json", tmp_path / "ablation.png"
    command = [sys.executable, "benchmarks/bench_masking_ablation.py", "--quick", "--levels", "char,entity"]
    command += ["--work_dir", str(tmp_path / "work"), "--json", str(figures), "--png", str(png)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["random init", "char", "entity"]
    records = json.loads(figures.read_text(encoding="utf-8"))
    assert [(r["name"], r["step"]) for r in records] == [
        ("random init", 0),
        ("char", 2),
        ("char", 4),
        ("entity", 2),
        ("entity", 4),
    ]
    for record in records:
        assert 0.0 <= record["probe_exact"] <= 1.0 and 0.0 <= record["probe_chars"] <= 1.0
        assert set(record["downstream"]) == {"sentiment", "ner"}
        assert all(0.0 <= score <= 1.0 for scores in record["downstream"].values() for score in scores)
    assert png.stat().st_size > 10_000
