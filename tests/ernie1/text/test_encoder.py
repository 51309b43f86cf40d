import random
import unicodedata

import numpy as np
import pytest
from paddlenlp.transformers import BertTokenizer, ErnieTokenizer

from ernie1.text.encoder import (
    TABLE_LIMIT,
    FastSentenceEncoder,
    SlowSentenceEncoder,
    _codepoint_kinds,
    build_sentence_encoder,
)
from ernie1.text.segmentation import get_word_segmenter
from ernie1.text.tokenizer import extend_chinese_char, read_vocab_file
from tests import support

# Things real text throws at a tokenizer: Latin words (cased, accented), digits, URLs, full-width forms, emoji and
# rare CJK (-> [UNK]), compatibility ideographs, combining marks, control and zero-width chars, odd whitespace,
# Greek sigma (context-dependent lower-casing), special tokens (the trie splits them out) and literal "##".
EDGE_SNIPPETS = [
    "ERNIE",
    "Mercer核",
    "iPhone 12 Pro",
    "café",
    "naïve",
    "Ünïcödé",
    "ΟΔΟΣ.Β",
    "straße",
    "İstanbul",
    "3.14159",
    "2017-11-15",
    "www.cctv.com",
    "ＡＢＣ１２３",
    "，",
    "！",
    "（注）",
    "“引号”",
    "😀",
    "👍🏻",
    "𠀀",
    "㐀",
    "\u9fa6",
    "\uf900",
    "\u2f800",
    "e\u0301",
    "\u0301",
    "\u200b",
    "\x00",
    "\ufffd",
    "\x07",
    "\u3000",
    "\u00a0",
    "\u2028",
    "\t",
    "  ",
    "\r\n",
    "[MASK]",
    "[unk]",
    "[UNK]",
    "##中",
    "a##b",
    "μm²",
    "Ⅻ",
    "①",
    "〇",
    "ǅ",
    "ﬁ",
    "\U000e0001",
    "\U0010fffd",
    "x" * 120,
    "超长" * 4,
    "",
]


def _stripped_vocab_tokenizer(tmp_path_factory):
    # cn-clip's vocab already has every ##<CJK>; drop them so extend_chinese_char has work to do (DATA.md).
    lines = read_vocab_file(support.vocab_file())  # not splitlines(): the vocab has U+2028 / U+0085 tokens
    kept = [t for t in lines if not (len(t) == 3 and t.startswith("##") and "\u4e00" <= t[2] <= "\u9fa5")]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    tokenizer = ErnieTokenizer(vocab_file=str(path))
    assert extend_chinese_char(tokenizer) == 7321
    return tokenizer


@pytest.fixture(scope="module")
def extended_tokenizer(tmp_path_factory):
    return _stripped_vocab_tokenizer(tmp_path_factory)


@pytest.fixture(scope="module")
def plain_tokenizer(vocab_path):
    return ErnieTokenizer(vocab_file=str(vocab_path))


@pytest.fixture(scope="module")
def news_sentences():
    sentences = [s for doc in support.news_documents(250, split="dev") for s in doc]
    rng = random.Random(7)
    mutated = []
    for sentence in sentences[:1000]:
        chars = list(sentence)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randint(0, len(chars)), rng.choice(EDGE_SNIPPETS))
        mutated.append("".join(chars))
    return sentences + mutated + EDGE_SNIPPETS


@pytest.fixture(scope="module")
def news_words(news_sentences):
    segment = get_word_segmenter("rjieba")
    return [segment(s) for s in news_sentences]


def _assert_same_ids(fast, slow, sentences, words_list):
    batch = fast.encode_batch(sentences, words_list).split()
    mismatches = []
    for index, sentence in enumerate(sentences):
        words = None if words_list is None else words_list[index]
        expected = slow.encode(sentence, words)
        assert expected.dtype == np.int64
        single = fast.encode(sentence, words)
        if not (np.array_equal(single, expected) and np.array_equal(batch[index], expected)):
            mismatches.append(sentence)
    assert mismatches == []


def test_fast_equals_slow_with_extended_vocab_and_whole_word_marks(extended_tokenizer, news_sentences, news_words):
    fast = build_sentence_encoder(extended_tokenizer, whole_word_mask=True)
    assert isinstance(fast, FastSentenceEncoder)
    assert len(news_sentences) > 6000
    _assert_same_ids(fast, SlowSentenceEncoder(extended_tokenizer, True), news_sentences, news_words)


def test_words_that_do_not_tile_the_sentence_and_missing_words(extended_tokenizer, news_sentences, news_words):
    # Words need not be the sentence's own segmentation (a set is all the original uses); None means no marking.
    rng = random.Random(3)
    sentences = news_sentences[:600]
    words_list = []
    for index, words in enumerate(news_words[:600]):
        if index % 5 == 0:
            words_list.append(None)
        else:
            shuffled = [w for w in words if rng.random() < 0.7] + ["中国", "国人", "##中"]
            rng.shuffle(shuffled)
            words_list.append(shuffled)
    fast = build_sentence_encoder(extended_tokenizer, whole_word_mask=True)
    _assert_same_ids(fast, SlowSentenceEncoder(extended_tokenizer, True), sentences, words_list)


def test_marks_really_happen_and_use_the_extension(extended_tokenizer):
    fast = build_sentence_encoder(extended_tokenizer, whole_word_mask=True)
    ids = fast.encode("通过利用mercer核", ["通过", "利用", "mercer", "核"])
    tokens = extended_tokenizer.convert_ids_to_tokens(ids.tolist())
    assert tokens == ["通", "##过", "利", "##用", "me", "##rc", "##er", "核"]
    assert ids[1] == extended_tokenizer.added_tokens_encoder["##过"]


def test_fast_equals_slow_without_marks(plain_tokenizer, news_sentences, news_words):
    sample = news_sentences[::7]
    fast = build_sentence_encoder(plain_tokenizer, whole_word_mask=False)
    _assert_same_ids(fast, SlowSentenceEncoder(plain_tokenizer, False), sample, news_words[::7])
    marking = build_sentence_encoder(plain_tokenizer, whole_word_mask=True)
    _assert_same_ids(marking, SlowSentenceEncoder(plain_tokenizer, True), sample, None)


def test_batch_lengths_and_empty_inputs(plain_tokenizer):
    fast = build_sentence_encoder(plain_tokenizer, whole_word_mask=True)
    batch = fast.encode_batch(["", "百度", " \u200b ", "a"], [[], ["百度"], [" \u200b "], ["a"]])
    assert batch.lengths.tolist() == [0, 2, 0, 1]
    assert batch.ids.dtype == np.int64 and len(batch.ids) == 3
    assert fast.encode_batch([]).ids.tolist() == []


def test_char_offsets_point_at_each_tokens_first_character(plain_tokenizer, news_sentences):
    fast = build_sentence_encoder(plain_tokenizer, whole_word_mask=False)
    ids, offsets = fast.encode("百度 ERNIE，2019年!", return_char_offsets=True)
    assert plain_tokenizer.convert_ids_to_tokens(ids.tolist()) == ["百", "度", "er", "##nie", "，", "2019", "年", "!"]
    assert offsets.dtype == np.int32
    assert offsets.tolist() == [0, 1, 3, 5, 8, 9, 13, 14]
    sample = news_sentences[::5]
    batch = fast.encode_batch(sample, return_char_offsets=True)  # > 32k chars: several internal chunks
    assert batch.char_offsets.dtype == np.int32 and len(batch.char_offsets) == len(batch.ids)
    batch_offsets = batch.split_char_offsets()
    reference = np.split(batch.char_offsets, np.cumsum(batch.lengths)[:-1])
    assert len(batch_offsets) == len(sample) and all(np.array_equal(a, b) for a, b in zip(batch_offsets, reference))
    for sentence, expected in zip(sample, batch_offsets):
        ids, offsets = fast.encode(sentence, return_char_offsets=True)
        assert np.array_equal(offsets, expected)
        assert len(offsets) == len(ids)
        assert np.all(np.diff(offsets) >= 0) and (len(offsets) == 0 or 0 <= offsets[0] and offsets[-1] < len(sentence))
        for token, offset in zip(plain_tokenizer.convert_ids_to_tokens(ids.tolist()), offsets.tolist()):
            surface = token[2:] if token.startswith("##") else token
            if token != "[UNK]" and len(surface) == 1:
                normalized = unicodedata.normalize("NFD", sentence[offset].lower())
                assert normalized[0] == surface, (sentence, token, offset)


def test_iso_table_agrees_with_the_tokenizer_on_every_codepoint(plain_tokenizer):
    fast = build_sentence_encoder(plain_tokenizer, whole_word_mask=False)
    kinds, _ = _codepoint_kinds(True, True)
    iso = np.flatnonzero(kinds == 2)
    assert len(iso) > 85000
    expected = [plain_tokenizer.convert_tokens_to_ids(plain_tokenizer.tokenize(chr(cp))) for cp in iso.tolist()]
    assert all(len(ids) == 1 for ids in expected)
    batch = fast.encode_batch([chr(cp) for cp in iso.tolist()])
    assert batch.lengths.tolist() == [1] * len(iso)
    assert batch.ids.tolist() == [ids[0] for ids in expected]


@pytest.mark.slow
def test_codepoints_beyond_the_table_are_never_boundaries():
    from paddlenlp.transformers.tokenizer_utils import _is_punctuation, _is_symbol, _is_whitespace

    bad = [
        cp
        for cp in range(TABLE_LIMIT, 0x110000)
        if _is_whitespace(chr(cp)) or chr(cp).isspace() or _is_punctuation(chr(cp)) or _is_symbol(chr(cp))
    ]
    assert bad == []


def test_other_tokenizers_get_the_slow_reference():
    class CharTokenizer:
        def tokenize(self, text):
            return list(text)

        def convert_tokens_to_ids(self, tokens):
            return [{"中": 1, "国": 2, "##国": 3}[t] for t in tokens]

    encoder = build_sentence_encoder(CharTokenizer(), whole_word_mask=True)
    assert isinstance(encoder, SlowSentenceEncoder)
    assert encoder.tokens("中国", ["中国"]) == ["中", "##国"]
    assert encoder.encode("中国", ["中国"]).tolist() == [1, 3]
    assert encoder.encode_batch(["中国", "国"], [["中国"], None]).ids.tolist() == [1, 3, 2]


@pytest.mark.parametrize("tokenizer_class, lower", [(ErnieTokenizer, False), (BertTokenizer, True)])
def test_cased_and_bert_tokenizers(tokenizer_class, lower, vocab_path, news_sentences, news_words):
    tokenizer = tokenizer_class(vocab_file=str(vocab_path), do_lower_case=lower)
    fast = build_sentence_encoder(tokenizer, whole_word_mask=True)
    assert isinstance(fast, FastSentenceEncoder)
    sample = news_sentences[::9]
    assert any(c.isupper() for s in sample for c in s)
    _assert_same_ids(fast, SlowSentenceEncoder(tokenizer, True), sample, news_words[::9])
