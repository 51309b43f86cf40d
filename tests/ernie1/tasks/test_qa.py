"""QA building blocks: SQuAD reader with answer re-location, offsets, doc_stride windows, extraction, CMRC EM/F1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.tasks.qa import (
    OffsetTokenizer,
    QaExample,
    answer_token_span,
    build_features,
    char_f1,
    extract_answers,
    qa_metrics,
    read_squad_file,
    relocate_answer,
    split_units,
    window_starts,
)


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    from paddlenlp.transformers import ErnieTokenizer

    return ErnieTokenizer(str(vocab_path))


def squad(qas, context="范廷颂是越南罗马天主教枢机，1963年被任为主教。"):
    return {"version": "v1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def write_json(tmp_path, payload, name="d.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------------- reading


def test_relocate_answer_fixes_misaligned_starts():
    context = "北京是首都，北京很大。"
    assert relocate_answer(context, "北京", 0) == 0
    assert relocate_answer(context, "北京", 7) == 6  # one too high -> nearest hit
    assert relocate_answer(context, "北京", -1) == 0
    assert relocate_answer(context, "上海", 3) == -1
    assert relocate_answer(context, "", 0) == -1


def test_read_squad_relocates_and_keeps_all_references(tmp_path):
    qas = [
        {"id": "q1", "question": "谁?", "answers": [{"text": "范廷颂", "answer_start": 1}, {"text": "教宗", "answer_start": 3}]},
        {"id": "q2", "question": "何年?", "answers": [{"text": " 1963年 ", "answer_start": 14}]},
        {"id": "q3", "question": "无答案?"},
    ]  # fmt: skip
    examples = read_squad_file(write_json(tmp_path, squad(qas)), "--train_file")
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    assert examples[0].answers == ["范廷颂", "教宗"] and examples[0].answer_starts == [0, -1]
    assert examples[0].first_aligned_answer() == (0, "范廷颂")
    assert examples[1].answers == ["1963年"] and examples[1].answer_starts == [14]
    assert examples[2].answers == [] and examples[2].first_aligned_answer() is None


@pytest.mark.parametrize(
    "payload, message",
    [
        ("", "the file is empty"),
        ("{oops", "not valid JSON (Expecting property name enclosed in double quotes at line 1); expected SQuAD v1 JSON"),
        ({"version": "1"}, "expected SQuAD JSON: an object with a 'data' list of articles"),
        ({"data": [{"title": "x"}]}, "data[0]: no 'paragraphs' list"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0]: a paragraph without 'context' or 'qas'"),
        (squad([{"id": "a", "answers": []}]), "question #1: no 'question' field"),
        (squad([{"id": "a", "question": "?", "answers": [{"answer_start": 0}]}]), "question a: an answer without 'text'"),
        ({"data": []}, "no questions in the file"),
    ],
)  # fmt: skip
def test_bad_squad_files_give_one_line_errors(tmp_path, payload, message):
    path = write_json(tmp_path, payload)
    with pytest.raises(ToolkitError) as error:
        read_squad_file(path, "--dev_file")
    assert str(error.value) == f"--dev_file {path}: {message}"


# ---------------------------------------------------------------------------------------------------- features


def test_offsets_map_pieces_back_to_the_text(tokenizer):
    text = "我在 Beijing，住了2019年"
    assert split_units(text) == [(0, 1), (1, 2), (3, 10), (10, 11), (11, 12), (12, 13), (13, 17), (17, 18)]
    ids, offsets = OffsetTokenizer(tokenizer)(text)
    assert len(ids) == len(offsets)
    assert ids == tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
    pieces = "".join(text[start:end] for start, end in offsets)
    assert pieces.lower() == "我在beijing，住了2019年"


def test_window_starts_cover_the_context():
    assert window_starts(5, 10, 4) == [0]
    assert window_starts(25, 10, 4) == [0, 4, 8, 12, 16]
    assert window_starts(25, 10, 50) == [0, 10, 20]  # a stride wider than the window never skips tokens
    for num_tokens, window, stride in [(100, 7, 3), (33, 8, 8), (1, 1, 1)]:
        starts = window_starts(num_tokens, window, stride)
        covered = set()
        for start in starts:
            covered.update(range(start, min(start + window, num_tokens)))
        assert covered == set(range(num_tokens)) and starts[-1] + window >= num_tokens


def test_answer_token_span():
    offsets = [(0, 1), (1, 2), (3, 7), (7, 8)]
    assert answer_token_span(offsets, 1, 7) == (1, 2)
    assert answer_token_span(offsets, 4, 6) == (2, 2)  # inside one piece
    assert answer_token_span(offsets, 7, 9) is None  # runs past the window
    assert answer_token_span([], 0, 1) is None


def test_long_context_windows_label_the_answer_where_it_fits(tokenizer):
    context = "甲乙丙丁戊己庚辛壬癸" * 8 + "答案在这里" + "子丑寅卯" * 10
    start = context.find("答案在这里")
    example = QaExample("x", "答案在哪?", context, ["答案在这里"], [start])
    features = build_features(
        [example], tokenizer, max_seq_length=32, doc_stride=12, max_query_length=4, with_labels=True
    )
    assert len(features) > 5 and all(len(f.input_ids) <= 32 for f in features)
    labelled = [f for f in features if f.start_position > 0]
    assert labelled  # the answer lies wholly inside at least one window
    for feature in features:
        question_len = 1 + 4 + 1  # query truncated to max_query_length
        assert feature.token_type_ids == [0] * question_len + [1] * (len(feature.input_ids) - question_len)
        assert feature.offsets[:question_len] == [None] * question_len and feature.offsets[-1] is None
        if feature.start_position > 0:
            begin, end = feature.offsets[feature.start_position][0], feature.offsets[feature.end_position][1]
            assert context[begin:end] == "答案在这里"
        else:
            assert feature.end_position == 0
    with pytest.raises(
        ToolkitError, match=r"^--max_seq_length 8 leaves no room for the context after a 5-token question"
    ):
        build_features([example], tokenizer, max_seq_length=8, doc_stride=4, max_query_length=6)


def test_extract_answers_picks_best_valid_span_across_windows(tokenizer):
    context = "甲乙丙丁戊己庚辛壬癸" * 3
    example = QaExample("x", "问", context)
    features = build_features([example], tokenizer, max_seq_length=16, doc_stride=6, max_query_length=4)
    size = max(len(f.input_ids) for f in features) + 3  # padded like the Trainer's concatenated outputs
    starts = np.full((len(features), size), -100.0)
    ends = np.full((len(features), size), -100.0)
    starts[:, 0] = ends[:, 0] = 50.0  # CLS is never an answer
    second = features[1]
    first_context = second.offsets.index(next(o for o in second.offsets if o is not None))
    starts[1, first_context + 2], ends[1, first_context + 4] = 10.0, 10.0
    ends[1, first_context + 1] = 30.0  # an end before the start is invalid
    starts[0, -1] = 40.0  # padding column is ignored
    (answer,) = extract_answers([context], features, starts, ends, n_best_size=5, max_answer_length=10)
    begin = second.offsets[first_context + 2][0]
    assert answer == {"text": context[begin : begin + 3], "start": begin, "score": 20.0}
    (short,) = extract_answers([context], features, starts, ends, n_best_size=5, max_answer_length=2)
    assert short["text"] != answer["text"] and len(short["text"]) <= 2


# ---------------------------------------------------------------------------------------------------- metrics


def test_cmrc_metrics_max_over_references():
    assert char_f1("北京大学", "北京大学。") == 1.0  # punctuation is ignored
    assert char_f1("北京", "北京大学") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert char_f1("京大北", "北京大") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # longest common substring
    assert char_f1("", "北京") == 0.0
    metrics = qa_metrics(["北京", "上海", ""], [["北京大学", "北京"], ["广州"], ["天津"]])
    assert metrics["exact_match"] == pytest.approx(100 / 3)
    assert metrics["f1"] == pytest.approx(100 / 3)
    assert metrics["num_scored"] == 3.0
    assert qa_metrics(["x"], [[]])["num_scored"] == 0.0  # unanswerable references are skipped
    assert qa_metrics(["Ｂｅｉｊｉｎｇ"], [["beijing"]])["exact_match"] == 100.0  # NFKC + lower case


@pytest.mark.parametrize("value, start", [(5, 5), ("5", 5), (" 12 ", 12), (5.0, 5), ("-1", -1), (None, -1)])
def test_answer_start_accepts_integer_values(value, start):
    from ernie1.tasks.qa import _answer_start

    assert _answer_start(value, "q") == start


def test_an_integer_string_answer_start_is_relocated_like_an_int(tmp_path):
    context = "范廷颂是越南罗马天主教枢机，1963年被任为主教。"
    path = write_json(
        tmp_path, squad([{"id": "q", "question": "哪国?", "answers": [{"text": "越南", "answer_start": "5"}]}])
    )
    assert read_squad_file(str(path), "--train_file")[0].answer_starts == [context.index("越南")]


@pytest.mark.parametrize("value", ["five", 5.5, True, [5]])
def test_answer_start_that_is_not_an_integer_names_file_and_question(tmp_path, value):
    path = write_json(
        tmp_path, squad([{"id": "q9", "question": "哪国?", "answers": [{"text": "越南", "answer_start": value}]}])
    )
    with pytest.raises(ToolkitError) as info:
        read_squad_file(str(path), "--dev_file")
    assert (
        str(info.value)
        == f"--dev_file {path}: question q9: answer_start {str(value)!r} is not an integer character offset"
    )


def test_a_squad_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "gbk.json"
    path.write_bytes(json.dumps(squad([]), ensure_ascii=False).encode("gbk"))
    with pytest.raises(ToolkitError, match=r"gbk.json: not UTF-8 text \(invalid start byte at byte \d+\)$"):
        read_squad_file(str(path), "--train_file")
