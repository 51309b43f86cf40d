import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.text.knowledge import (
    ENTITY,
    PHRASE,
    EntityDictionary,
    char_spans_to_token_spans,
    find_char_spans,
    phrase_spans,
    pos_entity_spans,
    pos_tag,
)


def test_pos_entities_merge_adjacent_person_tokens():
    tagged = [("江", "nr"), ("泽民", "nr"), ("在", "p"), ("北京", "ns"), ("和", "c"), ("新华社", "nt"), ("说", "v")]
    assert pos_entity_spans(tagged) == [(0, 3, ENTITY), (4, 6, ENTITY), (7, 10, ENTITY)]


def test_pos_entities_skip_single_chars_and_nz():
    tagged = [("京", "ns"), ("普通", "nz"), ("王", "nr"), ("说", "v"), ("李", "nrfg")]
    assert pos_entity_spans(tagged) == []


def test_phrases_end_in_a_noun_and_keep_at_most_four_words():
    tagged = [("三个", "m"), ("新", "a"), ("政策", "n"), ("。", "x")]
    assert phrase_spans(tagged) == [(0, 5, PHRASE)]
    # trailing modifiers are trimmed; a lone noun is no phrase
    assert phrase_spans([("政策", "n"), ("新", "a"), ("，", "x"), ("城市", "n")]) == []
    # a run of 5 words keeps its last 4 (the head noun is at the end)
    words = [("一", "m"), ("个", "q"), ("大", "a"), ("红", "a"), ("苹果", "n")]
    assert phrase_spans(words) == [(1, 6, PHRASE)]
    # two runs separated by a verb
    tagged = [("经济", "n"), ("政策", "n"), ("促进", "v"), ("大", "a"), ("发展", "vn")]
    assert phrase_spans(tagged) == [(0, 4, PHRASE), (6, 9, PHRASE)]


def test_entity_dictionary_longest_match_without_overlap():
    entities = EntityDictionary(["北京", "北京大学", "大学生", " 清华 ", "x"])
    assert len(entities) == 4  # stripped, single chars dropped
    assert entities.spans("北京大学生在清华") == [(0, 4, ENTITY), (6, 8, ENTITY)]


def test_entity_dictionary_file_errors(tmp_path):
    with pytest.raises(ToolkitError, match=f"^--entity_dict {tmp_path / 'no.txt'}: file not found$"):
        EntityDictionary.from_file(str(tmp_path / "no.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ToolkitError, match="not UTF-8 text"):
        EntityDictionary.from_file(str(bad))


def test_find_char_spans_on_real_text_with_user_entities():
    text = "江泽民主席在北京大学发表了重要讲话，宣布三个新政策。"
    spans = find_char_spans(text, EntityDictionary(["重要讲话"]))
    assert (0, 3, ENTITY) in spans  # 江泽民 (nr)
    assert (6, 10, ENTITY) in spans  # 北京大学 (nt)
    assert (13, 17, ENTITY) in spans  # user dictionary
    assert (20, 25, PHRASE) in spans  # 三个新政策
    assert spans == sorted(set(spans))


def test_char_spans_to_token_spans():
    # tokens: 北 京 hel ##lo 大 学  (first-char offsets; "hello" covers chars 2..6, a space at 7)
    starts = [0, 1, 2, 5, 8, 9]
    spans = [(0, 2, ENTITY), (8, 10, PHRASE), (3, 9, ENTITY), (0, 1, PHRASE), (2, 10, PHRASE)]
    token_starts, token_ends, kinds = char_spans_to_token_spans(spans, starts)
    # (3, 9) starts mid-token and (0, 1) covers one token: both dropped
    assert token_starts.tolist() == [0, 4, 2]
    assert token_ends.tolist() == [2, 6, 6]
    assert kinds.tolist() == [ENTITY, PHRASE, PHRASE]
    assert (token_starts.dtype, token_ends.dtype, kinds.dtype) == (np.int32, np.int32, np.uint8)


@pytest.mark.parametrize("tagger", ["jieba", "rjieba"])
def test_taggers_cover_the_text_exactly(tagger):
    text = "江泽民主席在北京大学发表了重要讲话， hello  world 2019年，宣布三个新政策。"
    assert "".join(word for word, _flag in pos_tag(text, tagger)) == text
    spans = find_char_spans(text, tagger=tagger)
    assert (0, 3, ENTITY) in spans and (6, 10, ENTITY) in spans


def test_unknown_tagger():
    with pytest.raises(ToolkitError, match="^--cn_seg_func 'lac': no POS tagger for knowledge spans"):
        pos_tag("文本", "lac")
