import numpy as np

from ernie1.text.cjk import (
    cjk_codepoint_mask,
    cjk_extension_tokens,
    has_cjk_char,
    is_cjk_char,
    is_tokenizer_cjk_char,
)


def test_cjk_test_uses_the_original_range():
    assert has_cjk_char("中") and has_cjk_char("##中") and has_cjk_char("a中")
    assert not has_cjk_char("[UNK]") and not has_cjk_char("\u9fa6") and not has_cjk_char("\u3400")
    assert is_cjk_char("\u4e00") and is_cjk_char("\u9fa5")
    assert not is_cjk_char("\u4dff") and not is_cjk_char("\u9fa6") and not is_cjk_char("中国") and not is_cjk_char("")


def test_vectorised_mask_agrees_with_the_char_test():
    codepoints = np.arange(0x4D00, 0xA100)
    expected = [is_cjk_char(chr(cp)) for cp in codepoints]
    assert cjk_codepoint_mask(codepoints).tolist() == expected


def test_tokenizer_ranges_are_paddlenlps():
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    is_chinese = BasicTokenizer()._is_chinese_char
    mismatches = [cp for cp in range(0x30000) if is_tokenizer_cjk_char(chr(cp)) != bool(is_chinese(cp))]
    assert mismatches == []
    assert is_tokenizer_cjk_char("\u9fa6") and is_tokenizer_cjk_char("\u3400") and not is_tokenizer_cjk_char("a")


def test_extension_rule_in_vocab_order_skipping_present_and_existing():
    vocab = ["[PAD]", "中", "a", "##国", "国", "人", "中国", "\u9fa6", "人"]
    assert cjk_extension_tokens(vocab) == ["##中", "##人"]
    assert cjk_extension_tokens(vocab, existing={"##中"}) == ["##人"]
    assert cjk_extension_tokens(["##中", "中"]) == []
