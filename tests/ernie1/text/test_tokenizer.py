import hashlib
import json
import shutil

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.text import tokenizer as tokenization
from ernie1.text.cjk import is_cjk_char
from ernie1.text.tokenizer import (
    demo_vocab_path,
    extend_chinese_char,
    extended_vocab_size,
    load_tokenizer,
    read_vocab_file,
)


@pytest.fixture(scope="module")
def stripped_vocab(tmp_path_factory, vocab_path):
    """The demo vocab without its `##<CJK>` entries, so extend_chinese_char has work to do."""
    lines = read_vocab_file(vocab_path)  # not splitlines(): it would cut the vocab's U+2028 / U+0085 tokens
    kept = [line for line in lines if not (line.startswith("##") and is_cjk_char(line[2:]))]
    path = tmp_path_factory.mktemp("stripped") / "vocab.txt"
    path.write_bytes(("\n".join(kept) + "\n").encode("utf-8"))
    return path


def test_demo_vocab_path_is_the_md5_checked_cn_clip_vocab(vocab_path):
    path = demo_vocab_path()
    assert path == vocab_path
    assert hashlib.md5(path.read_bytes()).hexdigest() == "3b5b76c4aef48ecf8cb3abaafe960f09"


def test_demo_vocab_path_without_cn_clip(monkeypatch):
    monkeypatch.setattr(tokenization, "package_dir", lambda name: None)
    with pytest.raises(ToolkitError, match=r"needs the cn-clip package \(not installed\): run scripts/setup.sh"):
        demo_vocab_path()


def test_load_from_vocab_file_tokenizes_chinese_and_wordpieces(vocab_path):
    tokenizer = load_tokenizer(str(vocab_path))
    assert type(tokenizer).__name__ == "ErnieTokenizer"
    assert tokenizer.tokenize("通过利用mercer核") == ["通", "过", "利", "用", "me", "##rc", "##er", "核"]
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 100, 101, 102, 103]


def test_load_from_directory_honours_tokenizer_config(tmp_path, vocab_path):
    shutil.copy(vocab_path, tmp_path / "vocab.txt")
    assert load_tokenizer(str(tmp_path), "BertTokenizer").tokenize("Hello") == ["hello"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 512}))
    tokenizer = load_tokenizer(str(tmp_path), "BertTokenizer")
    assert type(tokenizer).__name__ == "BertTokenizer"
    assert tokenizer.tokenize("Hello") == ["[UNK]"]  # the bert-base-chinese vocab is lower-case only


def test_unsupported_tokenizer_name(vocab_path):
    with pytest.raises(ToolkitError) as error:
        load_tokenizer(str(vocab_path), "GPTTokenizer")
    assert (
        str(error.value) == "--tokenizer_name GPTTokenizer: unsupported; choose one of ErnieTokenizer, BertTokenizer"
    )


def test_builtin_name_offline_fails_fast(monkeypatch, tmp_path):
    import paddlenlp.utils.env

    monkeypatch.setattr(paddlenlp.utils.env, "MODEL_HOME", str(tmp_path))  # no cached copy
    monkeypatch.setattr(tokenization, "_download_host_reachable", lambda url: False)
    with pytest.raises(ToolkitError) as error:
        load_tokenizer("ernie-1.0")
    assert str(error.value) == (
        "--model_name ernie-1.0: cannot download the vocabulary (offline?); pass a local directory or vocab file, "
        "e.g. --model_name <path>/vocab.txt"
    )


def test_download_probe_reports_unreachable_host():
    # `.invalid` never resolves (RFC 2606), so this is quick and offline-safe.
    assert tokenization._download_host_reachable("https://no-such-host.invalid/vocab.txt") is False


def test_unknown_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ToolkitError, match="--model_name not-a-model: neither a directory with vocab.txt, a vocab file"
    ):
        load_tokenizer("not-a-model")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "vocabulary file not found"),
        (b"", "vocabulary file is empty"),
        (b"\n  \n", "vocabulary file is empty"),
        (b"[PAD]\n\xff\xfe\xfa\n", r"vocabulary file is not UTF-8 text \(byte 6\)"),
        # Issue 8.6: both used to reach training (ids past the vocab size; an AssertionError).
        (
            b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xe4\xb8\xad\na\n\xe4\xb8\xad\n",
            "token '中' is on lines 6 and 8; a vocab needs each token once \\(remove the duplicate line\\)",
        ),
        (b"[PAD]\n[CLS]\n[SEP]\n\xe4\xb8\xad\n", r"missing special tokens \[UNK\] \[MASK\]"),
    ],
)
def test_bad_vocab_file_names_the_file(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ToolkitError, match=f"^--model_name {path}: {message}$"):
        load_tokenizer(str(path))


def test_directory_without_vocab(tmp_path):
    with pytest.raises(ToolkitError, match=f"^--model_name {tmp_path / 'vocab.txt'}: vocabulary file not found$"):
        load_tokenizer(str(tmp_path))


def test_extend_chinese_char_adds_missing_sharp_forms_once(stripped_vocab):
    tokenizer = load_tokenizer(str(stripped_vocab))
    base = tokenizer.vocab_size
    cjk_chars = [tok for tok in read_vocab_file(stripped_vocab) if is_cjk_char(tok)]
    assert len(cjk_chars) == 7321  # every single CJK char of bert-base-chinese (DATA.md)
    assert tokenizer.convert_tokens_to_ids("##中") == tokenizer.convert_tokens_to_ids("[UNK]")

    assert extend_chinese_char(tokenizer) == 7321
    assert extended_vocab_size(tokenizer) == base + 7321
    # ids follow the base vocab in vocab order
    assert tokenizer.convert_tokens_to_ids("##" + cjk_chars[0]) == base
    assert tokenizer.convert_tokens_to_ids("##" + cjk_chars[-1]) == base + 7320
    assert tokenizer.convert_ids_to_tokens(base + 1) == "##" + cjk_chars[1]
    # the extension never changes how raw text is tokenized
    assert tokenizer.tokenize("中国") == ["中", "国"]

    assert extend_chinese_char(tokenizer) == 0
    assert extended_vocab_size(tokenizer) == base + 7321


def test_extend_chinese_char_is_a_no_op_on_the_full_vocab(vocab_path):
    tokenizer = load_tokenizer(str(vocab_path))
    assert extend_chinese_char(tokenizer) == 0
    assert extended_vocab_size(tokenizer) == 21128


def test_builtin_name_uses_a_cached_vocab_offline(monkeypatch, tmp_path, vocab_path):
    import paddlenlp.utils.env

    (tmp_path / "ernie-1.0").mkdir()
    shutil.copy(vocab_path, tmp_path / "ernie-1.0" / "vocab.txt")
    monkeypatch.setattr(paddlenlp.utils.env, "MODEL_HOME", str(tmp_path))
    monkeypatch.setattr(tokenization, "_download_host_reachable", lambda url: pytest.fail("no network expected"))
    tokenizer = load_tokenizer("ernie-1.0")
    assert tokenizer.vocab_size == 21128 and tokenizer.do_lower_case is True


def test_special_tokens_renamed_by_the_tokenizer_config_are_the_ones_required(tmp_path):
    (tmp_path / "vocab.txt").write_text("<pad>\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n中\n", encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"missing special tokens \[PAD\]$"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text('{"pad_token": "<pad>"}', encoding="utf-8")
    assert load_tokenizer(str(tmp_path)).pad_token == "<pad>"


def test_every_vocab_reader_applies_the_one_check(tmp_path):
    """Preprocessing, pretraining (through load_tokenizer), build_vocab and inspect_samples see the same error."""
    from ernie1.data.masking import MaskingVocab
    from ernie1.pretrain.data import load_pretraining_tokenizer

    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\nx\n", encoding="utf-8")
    problem = "token 'x' is on lines 6 and 7; a vocab needs each token once (remove the duplicate line)"
    for load, flag in [
        (lambda: load_tokenizer(str(path)), "--model_name"),
        # Lower layers name the config field; the CLI renders it as its flag.
        (lambda: load_pretraining_tokenizer(str(path)), "tokenizer_name_or_path"),
        (lambda: MaskingVocab.from_vocab_file(str(path), flag="--vocab"), "--vocab"),
    ]:
        with pytest.raises(ToolkitError) as error:
            load()
        assert str(error.value) == f"{flag} {path}: {problem}"
