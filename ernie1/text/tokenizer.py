"""Tokenizer loading (local vocab first, built-in names only when downloadable) and the `##` CJK vocab extension."""

from __future__ import annotations

import hashlib
import json
import socket
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import ADDED_TOKENS_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE
from ernie1.common.packages import package_dir
from ernie1.text.cjk import cjk_extension_tokens

TOKENIZER_CHOICES = ("ErnieTokenizer", "BertTokenizer")
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


def check_vocab_file(path: Path, flag: str = "--model_name") -> None:
    """Raise a one-line ToolkitError when `path` is missing, unreadable, not UTF-8 or empty."""
    if not path.is_file():
        raise ToolkitError(f"{flag} {path}: vocabulary file not found")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as error:
        raise ToolkitError(f"{flag} {path}: cannot read the vocabulary file ({error.strerror})") from None
    try:
        # A cut in the middle of a multi-byte character at the 1 MiB mark is not an error.
        head.decode("utf-8", errors="strict" if len(head) < (1 << 20) else "ignore")
    except UnicodeDecodeError as error:
        raise ToolkitError(f"{flag} {path}: vocabulary file is not UTF-8 text (byte {error.start})") from None
    if not head.strip():
        raise ToolkitError(f"{flag} {path}: vocabulary file is empty")


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


def _load_builtin(name: str, tokenizer_class: type) -> Any:
    vocab_urls = tokenizer_class.pretrained_resource_files_map.get("vocab_file", {})
    from paddlenlp.utils.env import MODEL_HOME

    cached = Path(MODEL_HOME) / name / VOCAB_FILE
    if cached.is_file():
        # Built straight from the cached file: from_pretrained may still look up optional files online.
        init_config = tokenizer_class.pretrained_init_configuration.get(name, {})
        options = {key: init_config[key] for key in _CONFIG_KEYS if key in init_config}
        return tokenizer_class(vocab_file=str(cached), **options)
    if not _download_host_reachable(vocab_urls[name]):
        raise ToolkitError(
            f"--model_name {name}: cannot download the vocabulary (offline?); pass a local directory or vocab "
            "file, e.g. --model_name <path>/vocab.txt"
        )
    try:
        return tokenizer_class.from_pretrained(name)
    except Exception as error:  # noqa: BLE001 - any download failure is reported as one line
        raise ToolkitError(f"--model_name {name}: downloading the vocabulary failed ({error})") from None


def load_tokenizer(name_or_path: str, tokenizer_name: str = "ErnieTokenizer") -> Any:
    """A WordPiece tokenizer from a directory holding vocab.txt, a vocab file, or a paddlenlp built-in name."""
    _check_tokenizer_name(tokenizer_name)
    path = Path(name_or_path)
    if path.is_dir():
        vocab = path / VOCAB_FILE
        check_vocab_file(vocab)
        config = _read_tokenizer_config(path)
        return _tokenizer_class(tokenizer_name)(vocab_file=str(vocab), **config)
    if path.is_file() or path.suffix == ".txt" or "/" in name_or_path or "\\" in name_or_path:
        check_vocab_file(path)
        config = _read_tokenizer_config(path.parent)
        return _tokenizer_class(tokenizer_name)(vocab_file=str(path), **config)
    tokenizer_class = _tokenizer_class(tokenizer_name)
    if name_or_path in tokenizer_class.pretrained_resource_files_map.get("vocab_file", {}):
        return _load_builtin(name_or_path, tokenizer_class)
    raise ToolkitError(
        f"--model_name {name_or_path}: neither a directory with vocab.txt, a vocab file, nor a built-in "
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
