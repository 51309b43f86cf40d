from paddlenlp.transformers import ErnieTokenizer

from ernie1.text.wwm import mark_whole_words


def test_reference_example_with_the_real_tokenizer(vocab_path):
    tokenizer = ErnieTokenizer(vocab_file=str(vocab_path))
    tokens = tokenizer.tokenize("通过利用mercer核")
    marked = mark_whole_words(tokens, ["通过", "利用", "mercer", "核"])
    assert " ".join(marked) == "通 ##过 利 ##用 me ##rc ##er 核"


def test_longest_window_wins_and_consumes_its_tokens():
    tokens = ["中", "国", "人", "民"]
    assert mark_whole_words(tokens, {"中国", "中国人", "人民"}) == ["中", "##国", "##人", "民"]


def test_words_may_be_any_iterable():
    assert mark_whole_words(["人", "民"], (w for w in ["人民"])) == ["人", "##民"]


def test_max_word_len_bounds_the_window():
    tokens = list("中华人民共和国")
    assert mark_whole_words(tokens, ["中华人民共和国"]) == tokens
    assert mark_whole_words(tokens, ["中华人民共和国"], max_word_len=7) == ["中"] + ["##" + t for t in tokens[1:]]


def test_non_cjk_tokens_never_start_a_word_but_may_end_one():
    assert mark_whole_words(["a", "中"], ["a中"]) == ["a", "中"]
    assert mark_whole_words(["中", "3"], ["中3"]) == ["中", "##3"]
    assert mark_whole_words(["me", "##rc", "核"], ["mercer"]) == ["me", "##rc", "核"]
