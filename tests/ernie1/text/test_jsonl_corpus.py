import json

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.text.jsonl_corpus import (
    OversizedLine,
    SkipCounter,
    iter_batches,
    iter_raw_lines,
    list_jsonl_inputs,
    parse_json_text,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (json.dumps({"text": "文档"}).encode(), ("文档", None)),
        (json.dumps({"text": "😀 \ud83d\ude00"}, ensure_ascii=True).encode(), ("😀 😀", None)),
        (b'{"text": "a\\ud800b"}', (None, "surrogate")),
        (b'{"text": "\\udfff"}', (None, "surrogate")),
        (b"\xff", (None, "undecodable")),
        (b'{"text": ', (None, "malformed")),
        (b'["text"]', (None, "missing_key")),
        (b'{"text": 1}', (None, "missing_key")),
    ],
)
def test_parse_json_text_reasons(raw, expected):
    assert parse_json_text(raw, "text") == expected


def test_skip_counter_summary_names_the_first_location():
    counter = SkipCounter()
    assert counter.summary() == "0 lines skipped"
    counter.add("surrogate", "a.jsonl:3")
    counter.add("no_content", "a.jsonl:5")
    counter.add("no_content", "b.jsonl:1")
    assert counter.summary() == (
        "3 lines skipped (1 lone surrogate escape, 2 no text after cleaning; first at a.jsonl:3 (lone surrogate escape))"
    )


def test_listing_reading_and_batching(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(b"1\n\n  \n2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jsonl").write_bytes(b"3")
    (tmp_path / ".hidden.jsonl").write_bytes(b"4\n")
    files = list_jsonl_inputs(str(tmp_path))
    assert files == [tmp_path / "b.jsonl", tmp_path / "sub" / "a.jsonl"]
    lines = list(iter_raw_lines(files))
    assert lines == [(0, 1, b"1\n"), (0, 4, b"2\n"), (1, 1, b"3")]
    assert [len(batch) for batch in iter_batches(iter(lines), 2)] == [2, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError, match=r"no \*\.jsonl files in this directory$"):
        list_jsonl_inputs(str(tmp_path / "empty"))


def test_lines_over_the_limit_are_skipped_unread(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"12345\n" + b"x" * 5000 + b"\n123456\n" + b"y" * 7 + b"\n" + b"z" * 6)
    lines = list(iter_raw_lines([path], max_line_bytes=6))
    assert lines == [
        (0, 1, b"12345\n"),
        (0, 2, OversizedLine(5001)),
        (0, 3, b"123456\n"),  # exactly the limit, newline not counted
        (0, 4, OversizedLine(8)),
        (0, 5, b"zzzzzz"),
    ]
    assert parse_json_text(OversizedLine(5001), "text") == (None, "too_long")
    assert [raw for _, _, raw in iter_raw_lines([path])][1] == b"x" * 5000 + b"\n"  # no limit: read whole
