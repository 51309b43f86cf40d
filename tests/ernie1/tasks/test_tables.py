"""ernie1/tasks/tables.py: local TSV/CSV/JSONL classification files and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.tasks import tables
from ernie1.tasks.tables import read_examples


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_with_chnsenticorp_header(tmp_path):
    path = write(tmp_path / "train.tsv", "label\ttext_a\n1\t很好\n0\t太差\n")
    assert read_examples(path) == [
        {"line": 2, "text": "很好", "label": "1"},
        {"line": 3, "text": "太差", "label": "0"},
    ]


def test_test_tsv_with_qid_header_has_no_labels(tmp_path):
    path = write(tmp_path / "test.tsv", "qid\ttext_a\n0\t不错\n")
    assert read_examples(path) == [{"line": 2, "text": "不错"}]


def test_headerless_rows_by_position(tmp_path):
    path = write(tmp_path / "pairs.tsv", "a\tb\t1\nc\td\t0\n")
    assert read_examples(path)[1] == {"text": "c", "text_b": "d", "label": "0", "line": 2}
    single = write(tmp_path / "texts.tsv", "只有文本\n\n另一条\n")
    assert [e["text"] for e in read_examples(single)] == ["只有文本", "另一条"]


def test_csv_quoting_and_jsonl_keys(tmp_path):
    csv_path = write(tmp_path / "d.csv", 'sentence1,sentence2,label\n"好,很好",还行,yes\n')
    assert read_examples(csv_path) == [{"line": 2, "text": "好,很好", "text_b": "还行", "label": "yes"}]
    jsonl = write(
        tmp_path / "d.jsonl", '{"sentence": "好", "label": 1}\n\n{"text_a": "差", "text_b": "x", "label": 0}\n'
    )
    assert read_examples(jsonl) == [
        {"line": 1, "text": "好", "label": "1"},
        {"line": 3, "text": "差", "text_b": "x", "label": "0"},
    ]


@pytest.mark.parametrize(
    "name, content, fmt, message",
    [
        ("empty.tsv", "", None, "--train_file {path}: the file is empty"),
        ("blank.tsv", "\n\n", None, "--train_file {path}: the file is empty"),
        ("header.tsv", "label\ttext_a\n", None, "--train_file {path}: no examples in the file"),
        (
            "wide.tsv",
            "a\tb\tc\td\n",
            None,
            "--train_file {path}: line 1: 4 columns; expected text[, text_b], label or a header row",
        ),
        ("short.tsv", "label\ttext_a\n1\n", None, "--train_file {path}: line 2: 1 columns, but the header has 2"),
        (
            "nolabel.tsv",
            "label\tqid\n1\t2\n",
            None,
            "--train_file {path}: the header ['label', 'qid'] has no text column; name one of text, text_a, sentence, sentence1, premise, query",
        ),
        (
            "bad.jsonl",
            '{"text": 1}\n{oops\n',
            None,
            "--train_file {path}: line 2: not valid JSON (Expecting property name enclosed in double quotes)",
        ),
        (
            "notext.jsonl",
            '{"label": 1}\n',
            None,
            "--train_file {path}: line 1: no text field; use one of text, text_a, sentence, sentence1, premise, query",
        ),
        (
            "data.xyz",
            "a\t1\n",
            None,
            "--train_file {path}: cannot tell the format from the suffix; pass --file_format ",
        ),
        ("data.xyz", "a\t1\n", "parquet", "--file_format parquet: unknown; expected one of "),
    ],
)
def test_bad_local_files_are_one_line_errors(tmp_path, name, content, fmt, message):
    path = write(tmp_path / name, content)
    with pytest.raises(ToolkitError) as info:
        read_examples(path, fmt, flag="--train_file")
    assert str(info.value).startswith(message.format(path=path))
    assert "\n" not in str(info.value)


def test_registered_reader_is_found_by_suffix(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "READERS", dict(tables.READERS))
    monkeypatch.setattr(tables, "FORMAT_BY_SUFFIX", dict(tables.FORMAT_BY_SUFFIX))
    tables.register_reader("upper", suffixes=(".up",))(lambda text: [{"text": text.upper(), "line": 1}])
    assert read_examples(write(tmp_path / "x.up", "ab")) == [{"text": "AB", "line": 1}]
