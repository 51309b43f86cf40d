"""Knowledge probe building blocks: sentence readers, entity detection, query building with its skips, scoring."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import ErnieTokenizer

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.masked_lm import MaskedLM
from ernie1.tasks.knowledge_probe import (
    ProbeQuery,
    ProbeResult,
    ProbeSentence,
    build_queries,
    conll_sentences,
    detected_entities,
    read_texts,
    score_queries,
    sentence_tokens,
    split_sentences,
    text_file_sentences,
)
from tests import probe_support


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    return ErnieTokenizer(str(vocab_path))


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(list(ids))


def test_conll_gives_gold_spans_in_char_offsets(tmp_path):
    path = probe_support.write_conll(tmp_path / "probe.txt")
    sentences = conll_sentences(str(path))
    assert [(s.text, list(s.entities)) for s in sentences] == [
        (text, [(start, end) for start, end, _ in spans]) for text, spans in probe_support.PROBE_SENTENCES
    ]
    assert len(conll_sentences(str(path), max_sentences=3)) == 3


def test_multi_char_words_map_to_char_offsets(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("我 O\n去 O\nNew B-LOC\nYork I-LOC\n了 O\n", encoding="utf-8")
    assert conll_sentences(str(path)) == [ProbeSentence("我去NewYork了", ((2, 9),))]


def test_split_sentences():
    assert split_sentences("北京是首都。上海呢？ 好！\n\n最后一句") == ["北京是首都。", "上海呢？", "好！", "最后一句"]


def test_text_and_jsonl_files(tmp_path):
    text = tmp_path / "probe.txt"
    text.write_text("哈尔滨是黑龙江的省会。北京是中国的首都\n\n", encoding="utf-8")
    jsonl = tmp_path / "probe.jsonl"
    jsonl.write_text(json.dumps({"text": "哈尔滨是黑龙江的省会。北京是中国的首都"}, ensure_ascii=False) + "\n")
    expected = [
        ProbeSentence("哈尔滨是黑龙江的省会。", ((0, 3), (4, 7))),
        ProbeSentence("北京是中国的首都", ((0, 2), (3, 5))),
    ]
    assert text_file_sentences(str(text)) == expected
    assert text_file_sentences(str(jsonl)) == expected
    assert text_file_sentences(str(jsonl), max_sentences=1) == expected[:1]


def test_detected_entities_keep_the_first_of_overlapping_spans():
    from ernie1.text.knowledge import EntityDictionary, find_char_spans

    # jieba tags 湖南/ns and 韶山/ns; the dictionary adds 湖南韶山 over both: sorted by (start, end), 湖南 comes first
    # and the spans overlapping it are dropped.
    text = "毛泽东出生在湖南韶山"
    dictionary = EntityDictionary(["湖南韶山"])
    assert [(s, e) for s, e, _ in find_char_spans(text, dictionary)] == [(0, 3), (6, 8), (6, 10), (8, 10)]
    assert detected_entities(text, dictionary) == [(0, 3), (6, 8), (8, 10)]


def test_bad_text_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"title": "x"}\n', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"^--text_file .*bad.jsonl:2: no string under --json_key \(text\)$"):
        list(read_texts(str(bad)))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(ToolkitError, match=r"binary.txt:2: not UTF-8 text \(byte 1 of the line\)$"):
        list(read_texts(str(binary)))
    with pytest.raises(ToolkitError, match=r"^--text_file .*missing.txt: file not found$"):
        list(read_texts(str(tmp_path / "missing.txt")))


def test_sentence_tokens_and_queries(tokenizer):
    sentence = ProbeSentence("姚明在NBA打球", ((0, 2), (3, 6)))
    ids, spans = sentence_tokens(sentence, tokenizer)
    assert tokens(tokenizer, ids) == ["姚", "明", "在", "nba", "打", "球"]
    assert spans == [(0, 2), None]  # NBA is one word piece, not one token per character
    built = build_queries([sentence], tokenizer, max_seq_length=16)
    assert built.skipped_not_single_tokens == 1 and built.skipped_beyond_max_seq_length == 0
    (query,) = built.queries
    assert tokens(tokenizer, query.input_ids) == ["[CLS]", "[MASK]", "[MASK]", "在", "nba", "打", "球", "[SEP]"]
    assert query.positions == (1, 2)
    assert tokens(tokenizer, query.answer) == ["姚", "明"]


def test_each_entity_is_masked_alone_and_long_sentences_are_cut(tokenizer):
    sentence = ProbeSentence("哈尔滨是黑龙江的省会", ((0, 3), (4, 7)))
    built = build_queries([sentence], tokenizer, max_seq_length=12)
    first, second = built.queries
    assert tokens(tokenizer, first.input_ids)[:8] == ["[CLS]", "[MASK]", "[MASK]", "[MASK]", "是", "黑", "龙", "江"]
    assert tokens(tokenizer, second.input_ids)[:8] == ["[CLS]", "哈", "尔", "滨", "是", "[MASK]", "[MASK]", "[MASK]"]
    # max_seq_length 8 leaves 6 sentence tokens: 黑龙江 (its tokens 4-6) does not fit and is skipped; the context of
    # 哈尔滨 is cut there.
    cut = build_queries([sentence], tokenizer, max_seq_length=8)
    assert (len(cut.queries), cut.skipped_beyond_max_seq_length) == (1, 1)
    assert tokens(tokenizer, cut.queries[0].input_ids) == [
        "[CLS]",
        "[MASK]",
        "[MASK]",
        "[MASK]",
        "是",
        "黑",
        "龙",
        "[SEP]",
    ]
    assert len(build_queries([sentence, sentence], tokenizer, 32, max_entities=3).queries) == 3


def test_unknown_characters_are_skipped(tokenizer):
    sentence = ProbeSentence("\u4dc0\u4dc1是符号", ((0, 2),))  # hexagram symbols: not in the vocab
    built = build_queries([sentence], tokenizer, 32)
    assert (built.queries, built.skipped_not_single_tokens) == ([], 1)


class ConstantModel(paddle.nn.Layer):
    """Predicts token `favourite` at every masked position."""

    def __init__(self, vocab_size: int, favourite: int):
        super().__init__()
        self.vocab_size, self.favourite = vocab_size, favourite

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, masked_positions=None):
        scores = np.zeros((len(masked_positions), self.vocab_size), np.float32)
        scores[:, self.favourite] = 1.0
        return paddle.to_tensor(scores)


def test_scores_count_whole_entities_and_characters(tokenizer):
    masked_lm = MaskedLM(ConstantModel(20, 7), tokenizer, "constant", "test", 128, 20)
    queries = [
        ProbeQuery((2, 4, 4, 3), (1, 2), (7, 7)),  # both right: exact
        ProbeQuery((2, 4, 4, 3), (1, 2), (7, 8)),  # one of two
        ProbeQuery((2, 4, 3), (1,), (9,)),  # wrong
    ]
    assert score_queries(masked_lm, queries, batch_size=2) == (pytest.approx(1 / 3), pytest.approx(3 / 5))
    assert score_queries(masked_lm, []) == (0.0, 0.0)


def test_result_line_format():
    result = ProbeResult("out/model_last", 0.123456, 2 / 3, 35, 1, 0)
    assert result.line() == "out/model_last: entity_exact_match=0.1235 char_accuracy=0.6667 entities=35"
    assert result.to_dict() == {
        "model_dir": "out/model_last",
        "entity_exact_match": 0.123456,
        "char_accuracy": 2 / 3,
        "entities": 35,
        "skipped_not_single_tokens": 1,
        "skipped_beyond_max_seq_length": 0,
    }
