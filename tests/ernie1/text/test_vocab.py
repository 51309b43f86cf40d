import collections

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.text.vocab import select_vocab, write_vocab


def test_selection_order_specials_chars_inner_chars_then_pieces():
    chars = collections.Counter({"中": 9, "a": 7, "b": 7, "x": 1})
    words = collections.Counter({"ab": 4, "abab": 3})
    vocab = select_vocab(chars, words, vocab_size=20, min_frequency=2, max_piece_chars=16)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # characters by count (ties alphabetical), then ## forms of those seen inside words, then pieces by count
    assert vocab[5:8] == ["中", "a", "b"]
    assert vocab[8:10] == ["##a", "##b"]
    assert vocab[10:] == ["ab", "##ab", "##bab", "aba", "abab"]  # ab: 4 + 3; the rest 3 each
    assert "x" not in vocab


def test_vocab_size_too_small_and_directory_output(tmp_path):
    chars = collections.Counter({"中": 9})
    with pytest.raises(ToolkitError, match="^--vocab_size 5: too small for the 6 special tokens"):
        select_vocab(chars, collections.Counter(), vocab_size=5, min_frequency=1, max_piece_chars=16)
    with pytest.raises(ToolkitError, match="is a directory; name the vocab file"):
        write_vocab(["[PAD]"], str(tmp_path))
    path = write_vocab(["[PAD]", "中"], str(tmp_path / "sub" / "vocab.txt"))
    assert path.read_text(encoding="utf-8") == "[PAD]\n中\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.txt"]
