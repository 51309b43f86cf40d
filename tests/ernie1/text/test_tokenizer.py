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
)


@pytest.fixture(scope="module")
def stripped_vocab(tmp_path_factory, vocab_path):
    """The demo vocab without its `##<CJK>` entries, so extend_chinese_char has work to do."""
    lines = vocab_path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not (line.startswith("##") and is_cjk_char(line[2:]))]
    path = tmp_path_factory.mktemp("stripped") / "vocab.txt"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
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
    cjk_chars = [tok for tok in stripped_vocab.read_text(encoding="utf-8").splitlines() if is_cjk_char(tok)]
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
