"""NER building blocks: CoNLL/\\002 readers, tag schemes, alignment with truncation, entity metrics, decoding."""

from __future__ import annotations

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.tasks.ner import (
    IGNORE_INDEX,
    build_label_list,
    decode_entities,
    encode_words,
    entity_metrics,
    extract_entities,
    read_ner_file,
    to_bio,
    word_tags,
    words_of_text,
)


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    from paddlenlp.transformers import ErnieTokenizer

    return ErnieTokenizer(str(vocab_path))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------------- schemes


def test_bmes_and_bioes_convert_to_bio():
    assert to_bio(["B-LOC", "M-LOC", "E-LOC", "S-PER", "O", "B-ORG", "E-ORG"]) == [
        "B-LOC", "I-LOC", "I-LOC", "B-PER", "O", "B-ORG", "I-ORG",
    ]  # fmt: skip
    assert to_bio(["S-LOC", "S-LOC"]) == ["B-LOC", "B-LOC"]  # adjacent single-char entities stay separate


def test_extract_entities_follows_seqeval_default_mode():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "B-LOC", "I-ORG", "O", "B-PER"]
    assert extract_entities(tags) == [
        ("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("LOC", 6, 7), ("ORG", 7, 8), ("PER", 9, 10),
    ]  # fmt: skip
    assert extract_entities(["O", "O"]) == []


def test_entity_metrics_exact_span_match():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "I-ORG", "O"]]  # 1 of 2 predicted spans is exact
    metrics = entity_metrics(gold, predicted)
    assert metrics["precision"] == pytest.approx(1 / 2)
    assert metrics["recall"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["PER_f1"] == 1.0 and metrics["ORG_f1"] == 0.0 and metrics["LOC_f1"] == 0.0
    all_o = entity_metrics(gold, [["O"] * 4, ["O"] * 3])
    assert (all_o["precision"], all_o["recall"], all_o["f1"]) == (0.0, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------------- readers


def test_reads_conll_with_bmes_crlf_and_docstart(tmp_path):
    path = write(tmp_path, "a.txt", "-DOCSTART- O\n\n北 B-LOC\r\n京 E-LOC\r\n很 O\r\n\r\n\n张 S-PER\n三 O\n")
    examples = read_ner_file(path, "--train_file")
    assert [e.words for e in examples] == [["北", "京", "很"], ["张", "三"]]
    assert [e.tags for e in examples] == [["B-LOC", "I-LOC", "O"], ["B-PER", "O"]]
    assert [e.line for e in examples] == [3, 8]


def test_reads_conll2003_style_columns(tmp_path):
    path = write(tmp_path, "en.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n")
    (example,) = read_ner_file(path, "--train_file")
    assert example.words == ["EU", "rejects", "German"] and example.tags == ["B-ORG", "O", "B-MISC"]


def test_reads_joined_format_with_header(tmp_path):
    text = "text_a\tlabel\n海\002钓\002比\002赛\tO\002O\002O\002O\n北\002京\tB-LOC\002I-LOC\n"
    examples = read_ner_file(write(tmp_path, "j.tsv", text), "--train_file")
    assert [e.text for e in examples] == ["海钓比赛", "北京"]
    assert examples[1].tags == ["B-LOC", "I-LOC"] and examples[1].line == 3


def test_untagged_files_read_for_prediction(tmp_path):
    conll = read_ner_file(write(tmp_path, "t.txt", "北\n京\n\n上\n海\n"), "--test_file")
    assert [e.text for e in conll] == ["北京", "上海"] and all(e.tags is None for e in conll)
    joined = read_ner_file(write(tmp_path, "t.tsv", "北\002京\n"), "--test_file")
    assert joined[0].words == ["北", "京"] and joined[0].tags is None


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.txt", "\n\n", "--train_file {}: the file is empty"),
        ("missing.txt", "北 B-LOC\n京\n", "--train_file {}: line 1: some lines of this sentence have no tag column"),
        ("mixed.txt", "北 B-LOC\n\n京\n", "--train_file {} line 3: a sentence without tags in a tagged file"),
        ("badtag.txt", "北 B-LOC\n京 X-LOC\n", "--train_file {}: line 2: unknown tag 'X-LOC'; expected O or B-/I-/M-/E-/S-<TYPE>"),
        ("count.tsv", "北\002京\tB-LOC\n", "--train_file {}: line 1: 2 chars but 1 tags"),
        ("cols.tsv", "北\002京\tO\002O\tx\n", "--train_file {}: line 1: 3 tab-separated columns; expected chars<TAB>tags"),
    ],
)  # fmt: skip
def test_bad_files_give_one_line_errors(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ToolkitError) as error:
        read_ner_file(path, "--train_file")
    assert str(error.value) == message.format(path)


def test_missing_file_and_label_list_errors(tmp_path):
    with pytest.raises(ToolkitError, match=r"^--dev_file nope.txt: no such file$"):
        read_ner_file("nope.txt", "--dev_file")
    examples = read_ner_file(write(tmp_path, "o.txt", "北 O\n京 O\n"), "--train_file")
    with pytest.raises(ToolkitError, match="no entity tags at all"):
        build_label_list(examples, "--train_file o.txt")
    tagged = read_ner_file(write(tmp_path, "t.txt", "北 B-LOC\n京 I-LOC\n\n张 B-PER\n"), "--train_file")
    assert build_label_list(tagged, "x") == ["B-LOC", "I-LOC", "B-PER", "I-PER", "O"]


# ---------------------------------------------------------------------------------------------------- encoding


def test_encode_words_aligns_first_pieces_and_truncates(tokenizer):
    words = ["我", "在", "Beijing", "工", "作", " "]
    tags = ["O", "O", "B-LOC", "O", "O", "O"]
    label_to_id = {"B-LOC": 0, "I-LOC": 1, "O": 2}
    feature = encode_words(words, tokenizer, 32, tags, label_to_id)
    pieces = tokenizer.tokenize("beijing")
    assert len(pieces) > 1  # so the continuation-piece path is exercised
    assert feature.input_ids[0] == tokenizer.cls_token_id and feature.input_ids[-1] == tokenizer.sep_token_id
    assert feature.word_ids == [-1, 0, 1, 2] + [-1] * (len(pieces) - 1) + [3, 4, -1]  # the space has no token
    assert feature.labels == [IGNORE_INDEX, 2, 2, 0] + [IGNORE_INDEX] * (len(pieces) - 1) + [2, 2, IGNORE_INDEX]
    assert len(feature.input_ids) == len(feature.labels) == len(feature.token_type_ids) == len(feature.word_ids)

    long_words = list("北京欢迎你" * 30)
    short = encode_words(long_words, tokenizer, 16, ["O"] * len(long_words), label_to_id)
    assert len(short.input_ids) == 16 and short.word_ids[1:-1] == list(range(14))
    assert word_tags([0] * 16, short.word_ids, len(long_words), ["B-LOC", "I-LOC", "O"])[14:] == ["O"] * 136


def test_decode_entities_from_logits_and_ids(tokenizer):
    label_list = ["B-LOC", "I-LOC", "B-PER", "I-PER", "O"]
    words = list("张三去北京")
    feature = encode_words(words, tokenizer, 16)
    ids = [4, 2, 3, 4, 0, 1, 4]  # CLS, 张 B-PER, 三 I-PER, 去 O, 北 B-LOC, 京 I-LOC, SEP
    logits = np.full((10, 5), -1.0)  # padded past the sequence: rows 7.. are ignored
    logits[np.arange(7), ids] = 5.0
    logits[7:, 0] = 9.0
    expected = [
        {"type": "PER", "start": 0, "end": 2, "text": "张三"},
        {"type": "LOC", "start": 3, "end": 5, "text": "北京"},
    ]
    assert decode_entities(words, logits, feature.word_ids, label_list) == expected
    assert decode_entities(words, np.array(ids), feature.word_ids, label_list) == expected


def test_words_of_text_is_char_level():
    assert words_of_text("张三 在 北京") == ["张", "三", "在", "北", "京"]
    assert words_of_text(" \t") == []


def test_unseen_tags_are_refused_with_the_line_of_the_tag(tmp_path):
    from ernie1.tasks.ner import TASK
    from ernie1.tasks.spec import Split

    conll = read_ner_file(write(tmp_path, "dev.txt", "张 B-PER\n三 I-PER\n\n在 O\n微 B-ORG\n"), "--dev_file")
    with pytest.raises(ToolkitError, match=r"^d line 5: label 'B-ORG' is not one of the training labels"):
        TASK.check_split(Split(conll, "d"), ["B-PER", "I-PER", "O"], needs_gold=True)
    joined = read_ner_file(write(tmp_path, "dev.tsv", "张\002三\tB-PER\002I-PER\n微\002软\tB-ORG\002I-ORG\n"), "-")
    with pytest.raises(ToolkitError, match=r"^d line 2: label 'B-ORG'"):
        TASK.check_split(Split(joined, "d"), ["B-PER", "I-PER", "O"], needs_gold=True)
    TASK.check_split(Split(joined, "d"), ["B-ORG", "I-ORG", "B-PER", "I-PER", "O"], needs_gold=True)
