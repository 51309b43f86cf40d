import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data.dataset_config import ErnieDatasetConfig, parse_masking_mix
from ernie1.data.masking import (
    MaskingVocab,
    create_masked_lm_predictions,
    masking_budget,
    ngram_cdf,
    unit_spans,
)
from ernie1.text.cjk import cjk_extension_tokens

BASE = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[unused1]",
    "哈",
    "尔",
    "滨",
    "冰",
    "雪",
    "节",
    "##尔",
    "a",
    "##b",
]
BASE += ["##龘"]  # a `##字` whose plain character is not in the vocab


@pytest.fixture(scope="module")
def vocab():
    return MaskingVocab.from_tokens(BASE + cjk_extension_tokens(BASE), len(BASE))


def ids_of(vocab, text):
    index = {token: i for i, token in enumerate(vocab.tokens)}
    return np.array([index[token] for token in text.split()], dtype=np.int64)


def test_extension_and_tables(vocab):
    assert vocab.tokens[len(BASE) :] == ("##哈", "##滨", "##冰", "##雪", "##节")
    assert vocab.size == len(BASE) + 5
    restored = vocab.restore(ids_of(vocab, "[CLS] 哈 ##尔 ##滨 ##b ##龘 [SEP]"))
    assert vocab.decode(restored) == ["[CLS]", "哈", "尔", "滨", "##b", "[UNK]", "[SEP]"]
    # Replacement pool: plain base tokens only (no specials, no [unused], no ## tokens, no extension ids).
    assert vocab.decode(vocab.replacement_ids) == ["哈", "尔", "滨", "冰", "雪", "节", "a"]
    assert vocab.decode(np.flatnonzero(vocab.is_continuation)) == [
        "##尔",
        "##b",
        "##龘",
        "##哈",
        "##滨",
        "##冰",
        "##雪",
        "##节",
    ]
    assert (vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.pad_id, vocab.unk_id) == (2, 3, 4, 0, 1)


def test_restore_rejects_ids_outside_vocab(vocab):
    with pytest.raises(ToolkitError, match=r"token id 99 is outside the vocabulary \(21 ids"):
        vocab.restore(np.array([2, 99]))


def test_missing_special_token_is_named():
    with pytest.raises(ToolkitError, match=r"lacks the special tokens \[MASK\]"):
        MaskingVocab.from_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])


def test_from_tokenizer_matches_vocab_file(tmp_path):
    from ernie1.text.tokenizer import extend_chinese_char, load_tokenizer

    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(BASE) + "\n", encoding="utf-8")
    tokenizer = load_tokenizer(str(vocab_file))
    assert extend_chinese_char(tokenizer) == 5
    from_tokenizer = MaskingVocab.from_tokenizer(tokenizer)
    from_file = MaskingVocab.from_vocab_file(str(vocab_file))
    assert from_tokenizer.tokens == from_file.tokens
    assert from_tokenizer.base_vocab_size == len(BASE)
    np.testing.assert_array_equal(from_tokenizer.restore_char, from_file.restore_char)
    np.testing.assert_array_equal(from_tokenizer.replacement_ids, from_file.replacement_ids)
    np.testing.assert_array_equal(from_tokenizer.is_continuation, from_file.is_continuation)
    assert tokenizer.convert_tokens_to_ids(["##滨"]) == [from_file.tokens.index("##滨")]


def test_word_and_char_units(vocab):
    ids = ids_of(vocab, "[CLS] 哈 ##尔 ##滨 冰 ##雪 [SEP] ##节 a ##b [SEP]")
    starts, ends = unit_spans(ids, vocab, "word")
    # A `##` token right after [SEP] opens a unit instead of joining segment A's last word.
    assert list(zip(starts.tolist(), ends.tolist())) == [(1, 4), (4, 6), (7, 8), (8, 10)]
    starts, ends = unit_spans(ids, vocab, "char")
    assert starts.tolist() == [1, 2, 3, 4, 5, 7, 8, 9]
    assert (ends - starts).tolist() == [1] * 8


def test_budget_and_ngram_weights():
    assert masking_budget(512, 0.15, 0.15 * 509) == 76
    assert masking_budget(100, 0.15, 0.15 * 509) == 15
    assert masking_budget(10, 0.15, 0.15 * 509) == 2  # round(1.5) == 2
    assert masking_budget(10, 0.25, 0.15 * 509) == 2  # banker's rounding: round(2.5) == 2
    assert masking_budget(3, 0.15, 0.15 * 509) == 1
    assert masking_budget(512, 0.0, 0.0) == 0
    np.testing.assert_allclose(np.diff(ngram_cdf(3), prepend=0) / ngram_cdf(3)[-1], [6 / 11, 3 / 11, 2 / 11])
    np.testing.assert_allclose(np.diff(ngram_cdf(3, True), prepend=0) / ngram_cdf(3)[-1], [2 / 11, 3 / 11, 6 / 11])


def random_words(vocab, rng, num_words):
    """[CLS] words [SEP] words [SEP] with words of 1-3 tokens (extended `##` ids included)."""
    heads = ids_of(vocab, "哈 尔 滨 冰 雪 节 a")
    tails = ids_of(vocab, "##尔 ##b ##哈 ##滨 ##冰 ##雪 ##节")
    pieces = [[vocab.cls_id]]
    for k in range(num_words):
        if k == num_words // 2:
            pieces.append([vocab.sep_id])
        size = rng.integers(1, 4)
        pieces.append([rng.choice(heads), *rng.choice(tails, size - 1)])
    pieces.append([vocab.sep_id])
    return np.concatenate(pieces).astype(np.int64)


def is_cjk_continuation(token):
    return token.startswith("##") and len(token) == 3 and "\u4e00" <= token[2] <= "\u9fa5"


def mask(vocab, ids, rng, level="word", prob=0.15, max_ngrams=3, **spans):
    return create_masked_lm_predictions(
        ids,
        vocab,
        rng,
        level=level,
        masked_lm_prob=prob,
        max_predictions=prob * 509,
        cdf=ngram_cdf(max_ngrams),
        **spans,
    )


def test_word_masking_statistics(vocab):
    rng = np.random.default_rng(0)
    masked_total = tokens_total = kept = replaced = masked_as_mask = 0
    for _ in range(400):
        ids = random_words(vocab, rng, 60)
        out = mask(vocab, ids, rng)
        restored = vocab.restore(ids)
        positions = out.masked_positions
        assert np.all(np.diff(positions) > 0)
        assert out.masked_labels.tolist() == restored[positions].tolist()
        assert np.all(out.input_ids < vocab.base_vocab_size) and np.all(out.masked_labels < vocab.base_vocab_size)
        assert not any(
            is_cjk_continuation(t) for t in vocab.decode(np.concatenate([out.input_ids, out.masked_labels]))
        )
        # Unmasked positions carry the restored token; masked ones hold [MASK], the original, or a plain base token.
        unmasked = np.setdiff1d(np.arange(len(ids)), positions)
        np.testing.assert_array_equal(out.input_ids[unmasked], restored[unmasked])
        # Whole words: a masked word has every token masked.
        starts, ends = unit_spans(ids, vocab, "word")
        chosen = np.zeros(len(ids), bool)
        chosen[positions] = True
        for start, end in zip(starts, ends):
            assert chosen[start:end].all() or not chosen[start:end].any()
        assert len(positions) <= masking_budget(len(ids), 0.15, 0.15 * 509)
        values = out.input_ids[positions]
        masked_as_mask += int(np.sum(values == vocab.mask_id))
        kept += int(np.sum(values == out.masked_labels))
        replaced += int(np.sum((values != vocab.mask_id) & (values != out.masked_labels)))
        assert np.all(
            np.isin(values[(values != vocab.mask_id) & (values != out.masked_labels)], vocab.replacement_ids)
        )
        masked_total += len(positions)
        tokens_total += len(ids)
    assert abs(masked_total / tokens_total - 0.15) < 0.01
    # A random replacement can draw the original token (1/7 here), so "kept" is a bit above 10 %.
    assert abs(masked_as_mask / masked_total - 0.8) < 0.02
    assert abs(kept / masked_total - (0.1 + 0.1 / 7)) < 0.02
    assert abs(replaced / masked_total - 0.1 * 6 / 7) < 0.02


def test_char_masking_ngram_spans(vocab):
    """Char level, max_ngrams=1: single tokens, so the budget is always met exactly."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        ids = random_words(vocab, rng, 80)
        out = mask(vocab, ids, rng, level="char", max_ngrams=1)
        assert len(out.masked_positions) == masking_budget(len(ids), 0.15, 0.15 * 509)
        assert not np.any(np.isin(out.masked_positions, np.flatnonzero(ids == vocab.sep_id)))
        assert 0 not in out.masked_positions


def test_zero_probability_returns_empty_structure(vocab):
    ids = random_words(vocab, np.random.default_rng(2), 20)
    out = mask(vocab, ids, np.random.default_rng(2), prob=0.0)
    assert out.masked_positions.dtype == np.int64 and out.masked_positions.shape == (0,)
    assert out.masked_labels.dtype == np.int64 and out.masked_labels.shape == (0,)
    np.testing.assert_array_equal(out.input_ids, vocab.restore(ids))


def test_knowledge_units_are_masked_whole(vocab):
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        ids = random_words(vocab, rng, 40)
        starts, ends = unit_spans(ids, vocab, "word")
        # Knowledge spans of two whole words each, at every 5th word.
        span_starts, span_ends = starts[:-1:5], ends[1::5]
        out = mask(vocab, ids, rng, knowledge_starts=span_starts, knowledge_ends=span_ends)
        chosen = np.zeros(len(ids), bool)
        chosen[out.masked_positions] = True
        for start, end in zip(span_starts, span_ends):
            assert chosen[start:end].all() or not chosen[start:end].any()
            hits += int(chosen[start:end].all())
    assert hits > 100


def single_token_sample(vocab, num_tokens):
    """[CLS] A [SEP] B [SEP] of single-token words, `num_tokens` long."""
    words = ids_of(vocab, "哈 尔 滨 冰 雪 节 a")
    ids = np.resize(words, num_tokens)
    ids[[0, num_tokens // 2, num_tokens - 1]] = [vocab.cls_id, vocab.sep_id, vocab.sep_id]
    return ids


@pytest.mark.parametrize(
    "span_tokens,share,spans_taken,words",
    [
        (2, 1.0, 6, 4),  # 12 span tokens fit the budget of 16: all six spans, then 4 word tokens
        (2, 0.5, 4, 8),  # share 0.5: 8 tokens of spans (four of the six), 8 of words
        (3, 1.0, 5, 1),  # 18 > 16: five whole spans (15 tokens), never a split one; 1 word token
        (3, 0.5, 2, 10),  # 8 tokens allowed: two spans (6), the third would not fit whole
        (2, 0.0, 0, 16),  # no span at all; the words inside spans are not masked either
    ],
)
def test_knowledge_spans_are_chosen_first_whole_and_within_the_budget(vocab, span_tokens, share, spans_taken, words):
    ids = single_token_sample(vocab, 64)
    budget = masking_budget(64, 0.25, 100)
    assert budget == 16
    span_starts = np.array([2, 10, 20, 34, 44, 54])  # six spans, none on [CLS]/[SEP] (0, 32, 63)
    span_ends = span_starts + span_tokens
    in_spans = np.zeros(64, bool)
    for start, end in zip(span_starts, span_ends):
        in_spans[start:end] = True
    times_taken = np.zeros(6)
    for seed in range(300):
        out = create_masked_lm_predictions(
            ids,
            vocab,
            np.random.default_rng(seed),
            level="entity",
            masked_lm_prob=0.25,
            max_predictions=100,
            cdf=ngram_cdf(3),
            knowledge_starts=span_starts,
            knowledge_ends=span_ends,
            knowledge_share=share,
        )
        chosen = np.zeros(64, bool)
        chosen[out.masked_positions] = True
        whole = [bool(chosen[start:end].all()) for start, end in zip(span_starts, span_ends)]
        assert [chosen[start:end].any() for start, end in zip(span_starts, span_ends)] == whole  # never split
        assert sum(whole) == spans_taken and int(chosen[in_spans].sum()) == spans_taken * span_tokens
        assert int(chosen[~in_spans].sum()) == words  # words fill the rest, outside every span
        assert len(out.masked_positions) == spans_taken * span_tokens + words <= budget
        assert out.knowledge_starts.tolist() == span_starts[whole].tolist()
        assert out.knowledge_ends.tolist() == span_ends[whole].tolist()
        times_taken += whole
    if 0 < spans_taken < 6:  # which spans fit is random, each equally likely
        np.testing.assert_allclose(times_taken / 300, spans_taken / 6, atol=0.1)


def test_a_multi_word_span_is_never_split_by_the_word_fill(vocab):
    """Spans of two whole words (3-4 tokens) and a budget too small for all: no word n-gram cuts into one."""
    rng = np.random.default_rng(8)
    for _ in range(200):
        ids = random_words(vocab, rng, 60)
        starts, ends = unit_spans(ids, vocab, "word")
        pairs = np.arange(0, len(starts) - 1, 3)
        pairs = pairs[ends[pairs] == starts[pairs + 1]]  # both words in one segment
        span_starts, span_ends = starts[pairs], ends[pairs + 1]
        out = mask(vocab, ids, rng, level="phrase", knowledge_starts=span_starts, knowledge_ends=span_ends)
        chosen = np.zeros(len(ids), bool)
        chosen[out.masked_positions] = True
        for start, end in zip(span_starts, span_ends):
            assert chosen[start:end].all() or not chosen[start:end].any()
        assert len(out.masked_positions) <= masking_budget(len(ids), 0.15, 0.15 * 509)


def uint16_draws(rng, count):
    return rng.integers(0, 1 << 16, count, dtype=np.uint16)


def test_ngram_tiling_lengths_and_blocked_units():
    from ernie1.data.masking import _tile_chunks

    rng = np.random.default_rng(4)
    num_units = 20000
    bounds = _tile_chunks(np.zeros(num_units, bool), ngram_cdf(3), uint16_draws(rng, num_units))
    assert bounds[0] == 0 and bounds[-1] == num_units
    lengths = np.diff(bounds)[:-1]  # the last chunk is cut by the end
    shares = np.bincount(lengths, minlength=4)[1:] / len(lengths)
    np.testing.assert_allclose(shares, [6 / 11, 3 / 11, 2 / 11], atol=0.015)
    blocked = np.zeros(num_units, bool)
    blocked[::7] = True
    bounds = _tile_chunks(blocked, ngram_cdf(3, True), uint16_draws(rng, num_units))
    blocked_units = np.flatnonzero(blocked)
    assert set(blocked_units) | set(blocked_units + 1) <= set(bounds.tolist())  # each one a chunk of its own
    assert np.diff(bounds).max() == 3


def test_config_validation_messages():
    with pytest.raises(ToolkitError, match=r"^masked_lm_prob must be in \[0, 1\), got 1.0$"):
        ErnieDatasetConfig("x", masked_lm_prob=1.0)
    with pytest.raises(ToolkitError, match="^max_seq_len must be >= 8, got 4$"):
        ErnieDatasetConfig("x", max_seq_length=4)
    with pytest.raises(ToolkitError, match="^max_ngrams must be >= 1, got 0$"):
        ErnieDatasetConfig("x", max_ngrams=0)
    with pytest.raises(ToolkitError, match=r"^short_seq_prob must be in \[0, 1\], got 1.5$"):
        ErnieDatasetConfig("x", short_seq_prob=1.5)
    with pytest.raises(ToolkitError, match="^masking_level 'words': unknown level 'words'; use one of char, word"):
        ErnieDatasetConfig("x", masking_level="words")
    with pytest.raises(ToolkitError, match="^masking_level 'word:x': weight 'x' of 'word' is not a number$"):
        ErnieDatasetConfig("x", masking_level="word:x")
    with pytest.raises(ToolkitError, match="^masking_level 'word:0,phrase:0': the weights sum to 0"):
        ErnieDatasetConfig("x", masking_level="word:0,phrase:0")
    with pytest.raises(ToolkitError, match="^split '1,2,3,4' must be 1 to 3 non-negative numbers"):
        ErnieDatasetConfig("x", split="1,2,3,4")
    config = ErnieDatasetConfig("x", masking_level="word:3, entity:1", split="98/2")
    assert config.masking_mix == (("word", 0.75), ("entity", 0.25))
    assert config.split_fractions == (0.98, 0.02, 0.0)
    assert config.needs_knowledge
    assert parse_masking_mix("char") == (("char", 1.0),)
    assert not ErnieDatasetConfig("x").needs_knowledge
