"""The tokenizer and the model to fine-tune: from a checkpoint directory, a converted .pdparams file or a hub name."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import MODEL_CONFIG_FILES, VOCAB_FILE, WEIGHT_FILES
from ernie1.tasks.outputs import load_tokenizer_dir
from ernie1.text.tokenizer import drop_wordpiece_added_tokens

logger = logging.getLogger(__name__)
# paddlenlp's hub loading raises these for a missing or unreachable model; anything else is a bug worth a traceback.
HUB_ERRORS = (OSError, ValueError, RuntimeError, KeyError)


def error_summary(error: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception message on one line (paddlenlp's download errors run to paragraphs)."""
    text = " ".join(str(error).split()) or type(error).__name__
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _offline_error(flag: str, name: str, error: BaseException) -> ToolkitError:
    reason = error_summary(error)
    return ToolkitError(
        f"{flag} {name}: cannot load it from the paddlenlp hub ({reason}); offline, pass a local checkpoint directory "
        "such as the pretraining output's model_last (model_state.pdparams, model_config.json, vocab.txt)"
    )


def _is_local_path(path: str) -> bool:
    return Path(path).exists() or os.sep in path or path.startswith(".")


def load_tokenizer_for_finetune(path: str, flag: str = "--model_name_or_path") -> Any:
    """Load the tokenizer from a checkpoint dir (tokenizer files or just vocab.txt) or a paddlenlp name, no `##` adds."""
    from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer

    local = Path(path)
    if local.is_file() and local.suffix == ".txt":
        tokenizer = ErnieTokenizer(str(local))
    elif local.is_dir():
        if not (local / VOCAB_FILE).is_file():
            raise ToolkitError(
                f"{flag} {path}: no vocab.txt in this directory; pass --tokenizer_name <dir with vocab.txt>"
            )
        tokenizer = load_tokenizer_dir(local)
    elif local.exists():
        raise ToolkitError(f"{flag} {path}: expected a checkpoint directory or vocab.txt; pass --tokenizer_name <dir>")
    elif _is_local_path(path):
        raise ToolkitError(f"{flag} {path}: no such directory")
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except HUB_ERRORS as error:
            raise _offline_error(flag, path, error) from error
    dropped = drop_wordpiece_added_tokens(tokenizer)
    if dropped:
        logger.warning("dropped %d added '##' tokens from the tokenizer in %s", dropped, path)
    return tokenizer


def _config_source(path: str, config_name: Optional[str]) -> str:
    """Where the model config comes from (checking the checkpoint on the way): --config_name, else next to the weights."""
    local = Path(path)
    if local.is_dir():
        if not any((local / name).is_file() for name in WEIGHT_FILES):
            raise ToolkitError(f"--model_name_or_path {path}: no model_state.pdparams in this directory")
        if config_name:
            return config_name
        if not any((local / name).is_file() for name in MODEL_CONFIG_FILES):
            raise ToolkitError(
                f"--model_name_or_path {path}: no config.json or model_config.json; pass --config_name <dir with it>"
            )
        return path
    if local.is_file() and local.suffix == ".pdparams":
        return config_name or str(local.parent)
    if _is_local_path(path):
        raise ToolkitError(f"--model_name_or_path {path}: no such checkpoint directory or .pdparams file")
    return path  # a hub name brings its own config


def load_model_config(model_cls: Any, path: str, config_name: Optional[str] = None, **kwargs: Any) -> Any:
    """The model config (max_position_embeddings, sizes) of what `load_model_for_task` will load."""
    source = _config_source(path, config_name)
    flag = "--config_name" if config_name or Path(path).is_file() else "--model_name_or_path"
    try:
        return model_cls.config_class.from_pretrained(source, **kwargs)
    except HUB_ERRORS as error:
        if _is_local_path(source):
            raise ToolkitError(
                f"{flag} {source}: no model config found there ({error_summary(error)}); "
                "pass a directory with model_config.json"
            ) from error
        raise _offline_error(flag, source, error) from error


def load_model_for_task(model_cls: Any, path: str, config_name: Optional[str] = None, **kwargs: Any) -> Any:
    """`model_cls.from_pretrained` over a checkpoint dir, a converted .pdparams file, or a paddlenlp name."""
    local = Path(path)
    source = _config_source(path, config_name)
    if local.is_file() and local.suffix == ".pdparams":
        return _load_from_state_file(model_cls, local, source, **kwargs)
    if local.is_dir() and config_name:
        return _load_from_state_file(model_cls, _weights_in(local), source, **kwargs)
    if local.is_dir():
        try:
            return model_cls.from_pretrained(str(local), **kwargs)
        except Exception as error:  # paddle and safetensors raise several types for a truncated or foreign file
            raise _weights_error(_weights_in(local), error) from error
    try:
        return model_cls.from_pretrained(path, **kwargs)
    except HUB_ERRORS as error:
        raise _offline_error("--model_name_or_path", path, error) from error


def _weights_in(directory: Path) -> Path:
    return next(directory / name for name in WEIGHT_FILES if (directory / name).is_file())


def _weights_error(weights: Path, error: BaseException) -> ToolkitError:
    return ToolkitError(
        f"{weights}: cannot read the weights ({type(error).__name__}: {error_summary(error)}); "
        "the file is truncated or not a paddle state dict: copy it again or pick another checkpoint"
    )


def _load_state_file(weights: Path) -> Dict[str, Any]:
    import paddle

    try:
        return paddle.load(str(weights))
    except Exception as error:  # paddle raises several types for a corrupt or foreign pickle
        raise _weights_error(weights, error) from error


def _load_from_state_file(model_cls: Any, weights: Path, config_source: str, **kwargs: Any) -> Any:
    """Build from a config directory or name, then load a bare state dict (the converter's output)."""
    try:
        config = model_cls.config_class.from_pretrained(config_source, **kwargs)
    except HUB_ERRORS as error:
        raise ToolkitError(
            f"--config_name {config_source}: no model config found there; pass a directory with model_config.json"
        ) from error
    model = model_cls(config)
    state = _load_state_file(weights)
    prefix = f"{model.base_model_prefix}."
    own = model.state_dict()
    # A pretraining state dict names the encoder `ernie.*`; a bare encoder's dict has no prefix. Map both.
    renamed = {}
    for key, value in state.items():
        if key in own:
            renamed[key] = value
        elif prefix + key in own:
            renamed[prefix + key] = value
    if not any(key.startswith(prefix) for key in renamed):
        raise ToolkitError(f"{weights}: none of its parameters match an ERNIE model; is it a model state dict?")
    model.set_state_dict(renamed)
    return model
