"""tools/fill_mask.py: the filled sentence and the top-k candidates per mask; mistakes are one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ernie1.common.errors import run_cli
from tools.fill_mask import main

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = re.compile(r"^  \[MASK\] (\d+): (\S+ \d\.\d{4})(, \S+ \d\.\d{4})*$")


def test_the_trained_checkpoint_fills_a_masked_entity(trained, capsys):
    assert (
        main(
            ["--model_dir", str(trained.dygraph), "[MASK][MASK]是中国的首都", "[MASK][MASK]被称为诗圣", "--top_k", "3"]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [lines[0], lines[3]] == ["北京是中国的首都", "杜甫被称为诗圣"]
    assert len(lines) == 6
    candidate_lines = [lines[1], lines[2], lines[4], lines[5]]
    assert [CANDIDATES.match(line)[1] for line in candidate_lines] == ["1", "2", "1", "2"]
    first = [line.split(": ", 1)[1].split(", ") for line in candidate_lines]
    assert [options[0].split()[0] for options in first] == ["北", "京", "杜", "甫"]
    assert all(len(options) == 3 for options in first)
    probabilities = [[float(option.split()[1]) for option in options] for options in first]
    assert all(p == sorted(p, reverse=True) for p in probabilities)


def test_mistakes_are_one_line_errors(trained, tmp_path, capsys):
    def error(argv) -> str:
        assert run_cli(main, argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    assert error(["--model_dir", str(trained.dygraph), "北京是中国的首都"]) == (
        "error: text 1 has no [MASK]; write one per character to predict"
    )
    assert error(["--model_dir", str(trained.dygraph), "好[MASK]", " "]) == "error: text 2 is empty"
    assert (
        error(["--model_dir", str(tmp_path / "none"), "[MASK]"])
        == f"error: --model_dir {tmp_path / 'none'}: no such directory"
    )
    assert error(["--model_dir", str(trained.dygraph), "[MASK]", "--top_k", "x"]) == (
        "error: argument --top_k: 'x' is not an integer"
    )


def test_runs_as_a_script(trained):
    result = subprocess.run(
        [
            sys.executable,
            "tools/fill_mask.py",
            "--model_dir",
            str(trained.paddlenlp),
            "哈尔滨是[MASK][MASK][MASK]的省会",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "哈尔滨是黑龙江的省会"
    assert len(result.stdout.splitlines()) == 4
    assert result.stderr == ""  # paddle's import-time warnings are kept out of a CLI's output
