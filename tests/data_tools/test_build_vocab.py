import json

import pytest
from paddlenlp.transformers import ErnieTokenizer

from data_tools import build_vocab
from ernie1.common.errors import run_cli
from ernie1.text.tokenizer import extend_chinese_char
from tests import support


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "news.jsonl"
    documents = support.news_documents(200, split="test")
    with open(path, "w", encoding="utf-8") as handle:
        for sentences in documents:
            handle.write(json.dumps({"text": "\n".join(sentences)}, ensure_ascii=False) + "\n")
    return path, ["\n".join(s) for s in documents]


def _error_of(argv, capsys):
    assert run_cli(build_vocab.main, argv) == 2
    return capsys.readouterr().err.strip()


def test_built_vocab_loads_and_tokenizes_the_corpus_with_few_unks(corpus, tmp_path):
    path, texts = corpus
    output = tmp_path / "sub" / "vocab.txt"
    assert (
        build_vocab.main(
            ["--input_path", str(path), "--output_path", str(output), "--vocab_size", "8000", "--min_frequency", "1"]
        )
        == 0
    )
    tokens = output.read_text(encoding="utf-8").splitlines()
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(tokens) == len(set(tokens)) <= 8000
    assert "中" in tokens and "##a" in tokens
    tokenizer = ErnieTokenizer(vocab_file=str(output))
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[MASK]"]) == [0, 4]
    encoded = [t for text in texts for t in tokenizer.tokenize(text)]
    unk_rate = encoded.count("[UNK]") / len(encoded)
    assert unk_rate < 0.0005
    assert len([t for t in tokens if t.startswith("##") and len(t) > 3]) > 50  # real multi-char pieces


def test_vocab_size_caps_the_pieces_and_rejects_too_small(corpus, tmp_path, capsys):
    path, _ = corpus
    output = tmp_path / "vocab.txt"
    build_vocab.main(
        ["--input_path", str(path), "--output_path", str(output), "--vocab_size", "3000", "--min_frequency", "3"]
    )
    assert len(output.read_text(encoding="utf-8").split("\n")) == 3000 + 1
    error = _error_of(["--input_path", str(path), "--output_path", str(output), "--vocab_size", "100"], capsys)
    assert error.startswith("error: --vocab_size 100: too small for the ")


def test_extension_matches_the_tokenizer_extension(corpus, tmp_path, vocab_path):
    path, _ = corpus
    base = tmp_path / "base.txt"
    build_vocab.main(
        ["--input_path", str(path), "--output_path", str(base), "--vocab_size", "5000", "--min_frequency", "2"]
    )
    extended = tmp_path / "extended.txt"
    assert build_vocab.main(["--base_vocab", str(base), "--output_path", str(extended), "--extend_chinese_char"]) == 0
    expected = ErnieTokenizer(vocab_file=str(base))
    added = extend_chinese_char(expected)
    assert added > 1000
    loaded = ErnieTokenizer(vocab_file=str(extended))
    assert len(loaded) == len(expected)
    for token, index in list(expected.added_tokens_encoder.items())[:: max(1, added // 50)]:
        assert loaded.convert_tokens_to_ids(token) == index
    # Extending the full bert-base-chinese vocab adds nothing: it already has every ##<CJK>.
    again = tmp_path / "again.txt"
    build_vocab.main(["--base_vocab", str(vocab_path), "--output_path", str(again), "--extend_chinese_char"])
    assert again.read_text(encoding="utf-8") == vocab_path.read_text(encoding="utf-8")


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "v.txt")
    missing = tmp_path / "missing.jsonl"
    assert _error_of(["--input_path", str(missing), "--output_path", out], capsys) == (
        f"error: --input_path {missing}: no such file or directory"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\nnot json\n', encoding="utf-8")
    assert _error_of(["--input_path", str(bad), "--output_path", out], capsys) == (
        f"error: --input_path {bad}:2: malformed JSON"
    )
    bad.write_text('{"content": "好"}\n', encoding="utf-8")
    assert _error_of(["--input_path", str(bad), "--output_path", out], capsys) == (
        f"error: --input_path {bad}:1: no string under --json_key"
    )
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert _error_of(["--input_path", str(empty_dir), "--output_path", out], capsys) == (
        f"error: --input_path {empty_dir}: no *.jsonl files in this directory"
    )
    assert _error_of(["--output_path", out], capsys) == (
        "error: --input_path is required (or pass --base_vocab to extend an existing vocab)"
    )
    assert _error_of(["--input_path", str(bad), "--output_path", out, "--min_frequency", "0"], capsys) == (
        "error: --min_frequency 0: must be at least 1"
    )
    assert _error_of(["--base_vocab", str(bad), "--output_path", out, "--extend_chinese_char"], capsys) == (
        f"error: --base_vocab {bad}: missing special tokens [PAD] [UNK] [CLS] [SEP] [MASK]"
    )
    assert _error_of(["--input_path", str(bad), "--output_path", str(tmp_path)], capsys).startswith(
        "error: --input_path"
    )
