"""Static-graph checkpoints in the shared `model_<step>` / `model_last` layout, plus the static-name map.

A static checkpoint directory holds `static_vars.pdparams` (pickle of static name -> ndarray), `static_vars.pdopt`
(AdamW moments and beta powers) and `static_vars.json` (the PIR program), all from `paddle.static.save`; the
`{structured key: static name}` map `static_name_map.json`; and, as every checkpoint of this project,
`model_config.json`, tokenizer files, `config.yml`, `rng_state.pdparams` and the `COMPLETE` marker, written
atomically by `ernie1.pretrain.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import paddle

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.common.formats import STATIC_NAME_MAP_FILE, STATIC_VARS_PREFIX
from ernie1.pretrain import checkpoint

logger = logging.getLogger("ernie1")

STATIC_PARAMS_FILE = f"{STATIC_VARS_PREFIX}.pdparams"
STATIC_OPTIMIZER_FILE = f"{STATIC_VARS_PREFIX}.pdopt"


def save_static_checkpoint(
    directory: str,
    program: paddle.static.Program,
    name_map: Mapping[str, str],
    meta: Mapping[str, Any],
    tokenizer: Any = None,
    model_config: Optional[Mapping[str, Any]] = None,
    extra_parts: Optional[Mapping[str, Any]] = None,
    keep_existing: bool = False,
) -> Path:
    """Write a complete static checkpoint of the variables of `program` (in the current scope) into `directory`.

    `extra_parts` (name -> object with state_dict()) are saved as `checkpoint.save_checkpoint` parts.
    """
    parts = {"rng": checkpoint.RngState(), **dict(extra_parts or {})}

    def write_static_files(temporary: Path) -> None:
        paddle.static.save(program, str(temporary / STATIC_VARS_PREFIX))
        write_name_map(temporary, name_map)

    return checkpoint.save_checkpoint(
        directory,
        parts,
        meta,
        tokenizer=tokenizer,
        model_config=model_config,
        write_extra_files=write_static_files,
        keep_existing=keep_existing,
    )


def read_static_checkpoint(directory: str, name_map: Mapping[str, str], part_names: tuple) -> Dict[str, Any]:
    """Parameters + optimizer state (`program_state`) and the named parts of a static checkpoint, read into memory.

    A missing or truncated file is a CheckpointUnreadable (resume tries an older checkpoint); a name map of another
    architecture refuses the resume.
    """
    path = Path(directory)
    for name in (STATIC_PARAMS_FILE, STATIC_OPTIMIZER_FILE):
        if not (path / name).is_file():
            raise checkpoint.CheckpointUnreadable(f"{path / name}: missing; {path} is not a static-graph checkpoint")
    try:
        saved_map = read_name_map(str(path))
    except ToolkitError as error:
        raise checkpoint.CheckpointUnreadable(str(error)) from None
    if saved_map != dict(name_map):
        raise FieldError(
            "output_dir",
            f"{path / STATIC_NAME_MAP_FILE}: the checkpoint's parameters do not match this model (architecture or "
            "{binary_head} changed); resume with the same model flags or use a new {output_dir}",
            "binary_head",
        )
    try:
        program_state = paddle.static.load_program_state(str(path / STATIC_VARS_PREFIX))
    except Exception as error:  # noqa: BLE001 - a truncated pickle fails anywhere
        raise checkpoint.CheckpointUnreadable(
            f"{path / STATIC_PARAMS_FILE}: unreadable ({type(error).__name__}); truncated or corrupt?"
        ) from None
    # return_numpy: in static mode paddle.load would turn numpy's uint32 RNG key into a tensor and fail.
    parts = checkpoint.read_parts(str(path), part_names, required=(), return_numpy=True)
    return {"program_state": program_state, **parts}


def write_name_map(directory: str, name_map: Mapping[str, str]) -> Path:
    """Write `static_name_map.json`: {structured state_dict key: static parameter name}."""
    path = Path(directory) / STATIC_NAME_MAP_FILE
    path.write_text(json.dumps(dict(name_map), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_name_map(directory: str) -> Dict[str, str]:
    """Read `static_name_map.json` of a checkpoint directory."""
    path = Path(directory) / STATIC_NAME_MAP_FILE
    if not path.is_file():
        raise ToolkitError(f"{path}: missing; a static checkpoint needs the name map run_pretrain_static.py writes")
    try:
        name_map = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ToolkitError(f"{path}: invalid JSON ({error.msg})") from None
    if not isinstance(name_map, dict) or not all(isinstance(value, str) for value in name_map.values()):
        raise ToolkitError(f"{path}: expected a JSON object of structured key -> static name")
    return name_map


def read_static_params(pdparams_path: str) -> Dict[str, np.ndarray]:
    """The `{static name: ndarray}` pickle `paddle.static.save` writes (read without building a program)."""
    path = Path(pdparams_path)
    if not path.is_file():
        raise ToolkitError(f"{path}: no such static parameter file")
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as error:
        raise ToolkitError(f"{path}: not a paddle.static.save parameter file ({error})") from None
    if not isinstance(state, dict):
        raise ToolkitError(f"{path}: not a paddle.static.save parameter file (expected a dict of arrays)")
    # paddle.save (dygraph) pickles carry a name table entry; it is not a parameter.
    return {name: np.asarray(value) for name, value in state.items() if name != "StructuredToParameterName@@"}


def structured_state(
    name_map: Mapping[str, str], static_params: Mapping[str, np.ndarray], where: str
) -> Dict[str, np.ndarray]:
    """{structured key: ndarray} of a static checkpoint; every key must have its static parameter (unmapped static
    names are ignored). fp16 (AMP O2) parameters come back as fp32, as the dygraph checkpoints store them."""
    missing = [f"{key} ({static})" for key, static in name_map.items() if static not in static_params]
    if missing:
        shown = ", ".join(missing[:3])
        raise ToolkitError(f"{where}: {len(missing)} parameter(s) missing from the static checkpoint, e.g. {shown}")
    return {
        key: static_params[static].astype("float32")
        if static_params[static].dtype == np.float16
        else static_params[static]
        for key, static in name_map.items()
    }
