import logging

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.text.segmentation import SEGMENTER_CHOICES, get_word_segmenter
from tests import support


def test_unknown_segmenter_names_the_flag_and_the_choices():
    with pytest.raises(ToolkitError) as error:
        get_word_segmenter("lac")
    assert str(error.value) == "--cn_seg_func 'lac' is not supported; choose one of: jieba, rjieba"
    assert SEGMENTER_CHOICES == ("jieba", "rjieba")


@pytest.mark.parametrize("name", ["jieba", "rjieba"])
def test_words_concatenate_back_to_the_text(name):
    segment = get_word_segmenter(name)
    text = "百度是一家高科技公司，2017-11-15 发布了 ERNIE\n第二段  文字。"
    words = segment(text)
    assert "".join(words) == text
    assert "百度" in words and "高科技" in words


def test_jieba_log_is_silenced():
    get_word_segmenter("jieba")
    assert logging.getLogger("jieba").level == logging.WARNING


def test_rjieba_splits_out_of_dictionary_alphanumeric_runs_like_jieba():
    # jieba-rs returns "2017-11-15" and "www.cctv.com" whole; jieba's HMM fallback splits them.
    text = "日期2017-11-15访问www.cctv.com查看3.0t型号bam4q-1x1，占比50%。"
    expected = get_word_segmenter("jieba")(text)
    assert "2017" in expected and "cctv" in expected and "3.0" in expected
    assert get_word_segmenter("rjieba")(text) == expected


def test_rjieba_matches_jieba_on_news_documents():
    jieba_segment = get_word_segmenter("jieba")
    rjieba_segment = get_word_segmenter("rjieba")
    documents = ["\n".join(sentences) for sentences in support.news_documents(300, split="test")]
    assert len(documents) == 300
    mismatches = [doc[:40] for doc in documents if jieba_segment(doc) != rjieba_segment(doc)]
    assert mismatches == []
