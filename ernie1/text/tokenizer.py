"""Tokenizer loading (local vocab first, built-in names only when downloadable) and the `##` CJK vocab extension."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence
from urllib.parse import urlparse

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import ADDED_TOKENS_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE
from ernie1.common.packages import package_dir
from ernie1.text.cjk import cjk_extension_tokens

TOKENIZER_CHOICES = ("ErnieTokenizer", "BertTokenizer")
# The WordPiece special tokens, in the id order a new vocab gets them; every vocab must hold them.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CN_CLIP_VOCAB_MD5 = "3b5b76c4aef48ecf8cb3abaafe960f09"
# A download host that does not answer within this many seconds counts as offline: paddlenlp's own downloader
# retries for minutes before giving up, which looks like a hang to a user on an offline machine.
DOWNLOAD_PROBE_TIMEOUT_S = 3.0
# tokenizer_config.json keys forwarded to the WordPiece constructors; anything else in the file is ignored.
_CONFIG_KEYS = ("do_lower_case", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def demo_vocab_path() -> Path:
    """bert-base-chinese `vocab.txt` shipped in the cn-clip package, md5-checked (never imports cn_clip)."""
    directory = package_dir("cn_clip")
    if directory is None:
        raise ToolkitError("the demo vocabulary needs the cn-clip package (not installed): run scripts/setup.sh")
    path = directory / "clip" / VOCAB_FILE
    if not path.is_file():
        raise ToolkitError(f"{path}: demo vocabulary not found in the cn-clip package: run scripts/setup.sh")
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if digest != CN_CLIP_VOCAB_MD5:
        raise ToolkitError(f"{path}: md5 {digest} != expected {CN_CLIP_VOCAB_MD5}; reinstall with scripts/setup.sh")
    return path


def _check_tokenizer_name(tokenizer_name: str) -> None:
    if tokenizer_name not in TOKENIZER_CHOICES:
        raise ToolkitError(
            f"--tokenizer_name {tokenizer_name}: unsupported; choose one of {', '.join(TOKENIZER_CHOICES)}"
        )


def _tokenizer_class(tokenizer_name: str) -> type:
    _check_tokenizer_name(tokenizer_name)
    # Lazy: paddlenlp takes seconds to import. Its import-time warnings (ccache, distutils) are not actionable for a
    # user of this CLI and would bury the one-line errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddlenlp.transformers as transformers

    return getattr(transformers, tokenizer_name)


def read_vocab_file(
    path: Path, flag: Optional[str] = "--model_name", special_tokens: Sequence[str] = SPECIAL_TOKENS
) -> List[str]:
    """The tokens of a vocab.txt in id order, read as paddlenlp reads them (text mode, one token per line).

    A one-line ToolkitError, starting with `flag` (when given) and the file, when the file is missing, unreadable,
    not UTF-8, empty, holds a token twice, or lacks one of `special_tokens`: the one vocab check, used by
    preprocessing, pretraining (through `load_tokenizer`), build_vocab and inspect_samples.
    """
    where = f"{flag} {path}" if flag else str(path)
    if not Path(path).is_file():
        raise ToolkitError(f"{where}: vocabulary file not found")
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ToolkitError(f"{where}: vocabulary file is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ToolkitError(f"{where}: cannot read the vocabulary file ({error.strerror})") from None
    # Lines as a text-mode file yields them (universal newlines), like paddlenlp's load_vocabulary: not
    # splitlines(), which would also cut at U+2028 or U+0085 (real vocab tokens).
    tokens = [line.rstrip("\n") for line in io.StringIO(text, newline=None)]
    if not any(token.strip() for token in tokens):
        raise ToolkitError(f"{where}: vocabulary file is empty")
    first_line: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if first_line.setdefault(token, line) != line:
            # paddlenlp keeps the last line's id and counts unique tokens: ids would run past the vocab size.
            raise ToolkitError(
                f"{where}: token {token!r} is on lines {first_line[token]} and {line}; a vocab needs each token once "
                "(remove the duplicate line)"
            )
    missing = [token for token in special_tokens if token not in first_line]
    if missing:
        raise ToolkitError(f"{where}: missing special tokens {' '.join(missing)}")
    return tokens


def _read_tokenizer_config(directory: Path) -> dict[str, Any]:
    config_path = directory / TOKENIZER_CONFIG_FILE
    if not config_path.is_file():
        return {}
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ToolkitError(f"{config_path}: not a readable JSON tokenizer config ({error})") from None
    if not isinstance(config, dict):
        raise ToolkitError(f"{config_path}: expected a JSON object")
    return {key: config[key] for key in _CONFIG_KEYS if key in config}


def _download_host_reachable(url: str) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=DOWNLOAD_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _special_tokens(config: dict[str, Any]) -> tuple[str, ...]:
    """The special tokens a vocab must hold: SPECIAL_TOKENS, or those tokenizer_config.json renames."""
    keys = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
    return tuple(str(config.get(key, default)) for key, default in zip(keys, SPECIAL_TOKENS))


def _load_local(vocab: Path, config_dir: Path, tokenizer_name: str, flag: str) -> Any:
    config = _read_tokenizer_config(config_dir)
    read_vocab_file(vocab, flag, _special_tokens(config))
    return _tokenizer_class(tokenizer_name)(vocab_file=str(vocab), **config)


def _load_builtin(name: str, tokenizer_class: type, flag: str) -> Any:
    vocab_urls = tokenizer_class.pretrained_resource_files_map.get("vocab_file", {})
    from paddlenlp.utils.env import MODEL_HOME

    cached = Path(MODEL_HOME) / name / VOCAB_FILE
    if cached.is_file():
        # Built straight from the cached file: from_pretrained may still look up optional files online.
        init_config = tokenizer_class.pretrained_init_configuration.get(name, {})
        options = {key: init_config[key] for key in _CONFIG_KEYS if key in init_config}
        read_vocab_file(cached, flag, _special_tokens(options))
        return tokenizer_class(vocab_file=str(cached), **options)
    if not _download_host_reachable(vocab_urls[name]):
        raise ToolkitError(
            f"{flag} {name}: cannot download the vocabulary (offline?); pass a local directory or vocab "
            f"file, e.g. {flag} <path>/vocab.txt"
        )
    try:
        return tokenizer_class.from_pretrained(name)
    except Exception as error:  # noqa: BLE001 - any download failure is reported as one line
        raise ToolkitError(f"{flag} {name}: downloading the vocabulary failed ({error})") from None


def load_tokenizer(name_or_path: str, tokenizer_name: str = "ErnieTokenizer", flag: str = "--model_name") -> Any:
    """A WordPiece tokenizer from a directory holding vocab.txt, a vocab file, or a paddlenlp built-in name.

    A local vocab is validated first (`read_vocab_file`); errors start with `flag`, the option that named the source.
    """
    _check_tokenizer_name(tokenizer_name)
    path = Path(name_or_path)
    if path.is_dir():
        return _load_local(path / VOCAB_FILE, path, tokenizer_name, flag)
    if path.is_file() or path.suffix == ".txt" or "/" in name_or_path or "\\" in name_or_path:
        return _load_local(path, path.parent, tokenizer_name, flag)
    tokenizer_class = _tokenizer_class(tokenizer_name)
    if name_or_path in tokenizer_class.pretrained_resource_files_map.get("vocab_file", {}):
        return _load_builtin(name_or_path, tokenizer_class, flag)
    raise ToolkitError(
        f"{flag} {name_or_path}: neither a directory with vocab.txt, a vocab file, nor a built-in "
        f"{tokenizer_name} name"
    )


def extend_chinese_char(tokenizer: Any) -> int:
    """Add `##<c>` for every single CJK vocab char (U+4E00-U+9FA5) lacking one; returns how many were added.

    Ids follow the base vocab (`len(tokenizer) + i`), as in the original, so the extension is reproducible from the
    vocab alone. Idempotent: a second call adds nothing.
    """
    vocab = tokenizer.vocab.token_to_idx
    added = tokenizer.added_tokens_encoder
    new_tokens = cjk_extension_tokens(sorted(vocab, key=vocab.__getitem__), added)
    start = len(tokenizer)
    for offset, token in enumerate(new_tokens):
        added[token] = start + offset
        tokenizer.added_tokens_decoder[start + offset] = token
    return len(new_tokens)


def extended_vocab_size(tokenizer: Any) -> int:
    """Number of ids the tokenizer can produce, `##` extension included (what the id dtype must hold)."""
    return len(tokenizer)


def save_tokenizer_files(tokenizer: Any, directory: Path) -> None:
    """Save the tokenizer without the `##` CJK extension, so later loads see the plain vocab (PaddleNLP #3671)."""
    from paddlenlp.utils.log import logger as paddlenlp_logger

    directory = Path(directory)
    # paddlenlp logs two INFO lines per save; at checkpoint cadence that drowns the training log.
    paddlenlp_logger.disable()
    try:
        tokenizer.save_pretrained(str(directory))
    finally:
        paddlenlp_logger.enable()
    (directory / ADDED_TOKENS_FILE).unlink(missing_ok=True)
    config_path = directory / TOKENIZER_CONFIG_FILE
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.pop("added_tokens_decoder", None) is not None:
            config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def drop_wordpiece_added_tokens(tokenizer: Any) -> int:
    """Remove added `##` tokens (left by the vocab extension) so text is split by the vocab alone; returns how many."""
    dropped = [token for token in list(tokenizer.added_tokens_encoder) if token.startswith("##")]
    for token in dropped:
        index = tokenizer.added_tokens_encoder.pop(token)
        tokenizer.added_tokens_decoder.pop(index, None)
    if dropped:
        tokenizer.unique_no_split_tokens = [t for t in tokenizer.unique_no_split_tokens if not t.startswith("##")]
        tokenizer._create_trie(tokenizer.unique_no_split_tokens)
    return len(dropped)
