"""One checkpointer for every entry point: named parts with `state_dict()` written atomically (REFERENCE §12).

Layout of `output_dir/model_<step>` and `output_dir/model_last` (the original's file names, so existing tools work):
`model_state.pdparams`, `model_state.pdopt`, `scaler.pdparams` (AMP), `rng_state.pdparams`, `model_config.json`,
tokenizer files (no `added_tokens.json`), `config.yml` (model_name, global_step, global_batch_size,
consumed_samples + our fingerprints) and the completion marker `COMPLETE`, written last. A directory without the
marker does not exist for resume. Writes go to `<dir>.tmp-<pid>` and are renamed into place; the previous
`model_last` survives as `model_last_bak` until the new one is complete.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import paddle
import yaml

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.common.formats import (
    BACKUP_SUFFIX,
    CHECKPOINT_PART_FILES,
    COMPLETE_MARKER,
    LAST_CHECKPOINT,
    META_FILE,
    MODEL_CONFIG_FILE,
    SNAPSHOT_PREFIX,
)
from ernie1.text.tokenizer import save_tokenizer_files

logger = logging.getLogger("ernie1")

# Keys of config.yml a resume must agree on, and the config fields to name when they differ.
RESUME_CHECKS = {
    "global_batch_size": ("global_batch_size",),
    "model_config": ("model_config", "model_name_or_path"),
    "data_prefixes": ("input_dir",),
}


class CheckpointUnreadable(ToolkitError):
    """A checkpoint file exists but cannot be read (truncated, corrupt): resume falls back to an older one."""


def part_file(name: str) -> str:
    """File name a part is saved under."""
    return CHECKPOINT_PART_FILES.get(name, f"{name}.pdparams")


class RngState:
    """Python, numpy and paddle RNG states as one checkpoint part (so dropout and host randomness resume exactly)."""

    def state_dict(self) -> Dict[str, Any]:
        """Capture the current python, numpy and paddle RNG states."""
        states = {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": paddle.get_rng_state()}
        # paddle.save accepts neither bytes nor uint32 arrays, so the pickle travels as base64 text.
        return {"pickled_states": base64.b64encode(pickle.dumps(states)).decode("ascii")}

    def set_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore states captured by `state_dict`."""
        states = pickle.loads(base64.b64decode(state["pickled_states"]))
        random.setstate(states["python"])
        np.random.set_state(states["numpy"])
        paddle.set_rng_state(states["paddle"])


def is_complete(directory: Path) -> bool:
    """A checkpoint exists only once its completion marker and config.yml are there."""
    return (directory / COMPLETE_MARKER).is_file() and (directory / META_FILE).is_file()


def read_meta(directory: Path) -> Dict[str, Any]:
    """The parsed `config.yml` of a checkpoint directory."""
    path = Path(directory) / META_FILE
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointUnreadable(f"{path}: unreadable checkpoint metadata ({first_line})") from None
    if not isinstance(meta, dict) or "global_step" not in meta:
        raise CheckpointUnreadable(f"{path}: not a checkpoint config.yml (no global_step)")
    return meta


def _state_of(part: Any) -> Any:
    return part.state_dict() if hasattr(part, "state_dict") else part


def _remove_tree(path: Path) -> None:
    """Delete a checkpoint dir so that no crash leaves a half-deleted one that still looks complete."""
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale_temporaries(final: Path) -> None:
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in final.parent.glob(f".{final.name}.trash-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_file(path: Path, **options: Any) -> Any:
    """`paddle.load(path)`; a truncated or corrupt file is a CheckpointUnreadable naming it."""
    try:
        return paddle.load(str(path), **options)
    except Exception as error:  # noqa: BLE001 - paddle raises anything from pickle/zip/EOF errors on a bad file
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointUnreadable(
            f"{path}: unreadable ({type(error).__name__}: {reason}); truncated or corrupt?"
        ) from None


def _earlier_name(final: Path) -> Path:
    index = 1
    while final.with_name(f"{final.name}.earlier-{index}").exists():
        index += 1
    return final.with_name(f"{final.name}.earlier-{index}")


def _write_parts(
    temporary: Path,
    parts: Mapping[str, Any],
    meta: Mapping[str, Any],
    tokenizer: Any,
    model_config: Optional[Mapping[str, Any]],
    write_extra_files: Optional[Callable[[Path], None]],
) -> None:
    for name, part in parts.items():
        if part is not None:
            paddle.save(_state_of(part), str(temporary / part_file(name)))
    if model_config is not None:
        (temporary / MODEL_CONFIG_FILE).write_text(json.dumps(dict(model_config), indent=2, sort_keys=True), "utf-8")
    if tokenizer is not None:
        save_tokenizer_files(tokenizer, temporary)
    if write_extra_files is not None:
        write_extra_files(temporary)
    (temporary / META_FILE).write_text(yaml.safe_dump(dict(meta), sort_keys=False), encoding="utf-8")
    (temporary / COMPLETE_MARKER).write_text("ok\n", encoding="utf-8")
    _fsync_dir(temporary)


def save_checkpoint(
    directory: str,
    parts: Mapping[str, Any],
    meta: Mapping[str, Any],
    tokenizer: Any = None,
    model_config: Optional[Mapping[str, Any]] = None,
    keep_backup: bool = False,
    write_extra_files: Optional[Callable[[Path], None]] = None,
    keep_existing: bool = False,
) -> Path:
    """Write `parts` (name -> object with state_dict(), or a plain dict) + metadata atomically into `directory`.

    `write_extra_files(temporary_dir)` adds files of its own (e.g. the static graph's) inside the same atomic write.
    `keep_existing`: a complete checkpoint already at `directory` (a snapshot of another run state) is renamed to
    `<name>.earlier-<n>` instead of being replaced. A failed write (disk full, permissions) removes its temporary
    directory and is a one-line ToolkitError; the previous checkpoint stays.
    """
    final = Path(directory)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(final)
        temporary.mkdir()
        _write_parts(temporary, parts, meta, tokenizer, model_config, write_extra_files)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise ToolkitError(
            f"{final}: cannot write the checkpoint ({error.strerror or error}); free space or fix permissions, then "
            "resume from the previous checkpoint"
        ) from None
    backup = final.with_name(final.name + BACKUP_SUFFIX)
    if final.exists() and keep_existing and is_complete(final):
        kept = _earlier_name(final)
        os.replace(final, kept)
        logger.warning("%s existed from another run state: kept as %s", final, kept.name)
    if final.exists():
        # Old one becomes the backup first: at every instant either `final` or `backup` is complete.
        _remove_tree(backup)
        os.replace(final, backup)
    os.replace(temporary, final)
    _fsync_dir(final.parent)
    if not keep_backup:
        _remove_tree(backup)
    return final


def snapshot_step(path: Path) -> Optional[int]:
    """N for a `model_<N>` snapshot directory name, else None."""
    suffix = path.name[len(SNAPSHOT_PREFIX) :] if path.name.startswith(SNAPSHOT_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else None


def resume_candidates(output_dir: str) -> List[Path]:
    """Where a resume may start, in order: `model_last`, its backup, then `model_<step>` newest first."""
    output = Path(output_dir)
    candidates = [output / LAST_CHECKPOINT, output / (LAST_CHECKPOINT + BACKUP_SUFFIX)]
    snapshots = [(snapshot_step(path), path) for path in output.glob(f"{SNAPSHOT_PREFIX}*") if path.is_dir()]
    candidates += [path for step, path in sorted(item for item in snapshots if item[0] is not None)[::-1]]
    return [path for path in candidates if path.is_dir()]


def find_resume_checkpoint(output_dir: str) -> Optional[Path]:
    """The newest complete `model_last` (or its backup, if a kill hit the rename), else None."""
    candidates = []
    for path in resume_candidates(output_dir)[:2]:
        if path.name.startswith(LAST_CHECKPOINT) and is_complete(path):
            try:
                candidates.append((int(read_meta(path)["global_step"]), path.name == LAST_CHECKPOINT, path))
            except ToolkitError as error:
                logger.warning("ignoring %s: %s", path, error)
    if not candidates:
        return None
    return max(candidates)[2]


def _apply_state(name: str, part: Any, state: Any) -> None:
    if hasattr(part, "set_state_dict"):
        part.set_state_dict(state)
    elif hasattr(part, "load_state_dict"):  # paddle.amp.GradScaler
        part.load_state_dict(state)
    elif isinstance(part, dict):
        part.update(state)
    else:
        raise TypeError(f"checkpoint part {name!r} has no set_state_dict()/load_state_dict()")


def read_parts(
    directory: str, names: Sequence[str], required: tuple = ("model",), **load_options: Any
) -> Dict[str, Any]:
    """The states of the named parts saved in `directory`, read into memory (absent optional parts are left out).

    A missing required part or an unreadable file is a CheckpointUnreadable: resume may try an older checkpoint.
    """
    path = Path(directory)
    states = {}
    for name in names:
        file = path / part_file(name)
        if not file.is_file():
            if name in required:
                raise CheckpointUnreadable(f"{file}: missing from the checkpoint")
            # The original skipped the weights when the .pdopt was missing (§18.2); we load what exists and warn.
            logger.warning("%s not found: %s starts fresh", file, name)
            continue
        states[name] = load_file(file, **load_options)
    return states


def load_checkpoint(
    directory: str, parts: Mapping[str, Any], required: tuple = ("model",), **load_options: Any
) -> Dict[str, Any]:
    """Load each part present in `directory` via `set_state_dict`; returns the config.yml metadata.

    Every file is read before any part changes, so an unreadable file leaves the parts as they were.
    """
    meta = read_meta(Path(directory))
    names = [name for name, part in parts.items() if part is not None]
    for name, state in read_parts(directory, names, required, **load_options).items():
        _apply_state(name, parts[name], state)
    return meta


def check_resume_compatible(meta: Mapping[str, Any], current: Mapping[str, Any], directory: str = "") -> None:
    """Refuse a resume whose global batch size, model config or data prefixes differ from the checkpoint's."""
    where = f"{directory}: " if directory else ""
    for key, fields in RESUME_CHECKS.items():
        if key not in meta or key not in current:
            continue
        saved, now = _normalise(meta[key]), _normalise(current[key])
        if saved != now:
            restore = " / ".join("{" + name + "}" for name in fields)
            raise FieldError(
                fields[0],
                f"{where}cannot resume: {key} changed ({_describe_change(saved, now)}); restore {restore} or use a "
                "new {output_dir}",
                *fields[1:],
                "output_dir",
            )


def _describe_change(saved: Any, now: Any) -> str:
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(set(saved) | set(now))
        return ", ".join(f"{key} {saved.get(key)} -> {now.get(key)}" for key in keys if saved.get(key) != now.get(key))
    return f"{_short(saved)} -> {_short(now)}"


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
