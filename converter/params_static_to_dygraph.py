"""Convert a static-graph checkpoint into dygraph weights that paddlenlp `from_pretrained` and fine-tuning load.

    python converter/params_static_to_dygraph.py --path output/task/model_last --output_path output/task/dygraph

`--path` is a checkpoint directory written by run_pretrain_static.py (`static_vars.pdparams` + `static_name_map.json`),
a `paddle.static.save` prefix (`.../static_vars`) or its `.pdparams` file. The structured-key -> static-name map comes
from `static_name_map.json` next to the parameters; without one (checkpoints of other tools) it is rebuilt from the
architecture, which only works when that tool built the model in the same order. `--output_path` is a directory
(`model_state.pdparams`, `model_config.json`, tokenizer files) or, as the original, a `<name>.pdparams` file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ernie1.common.errors import FieldError, ToolkitError, run_cli
from ernie1.common.formats import (
    MODEL_CONFIG_FILE,
    STATIC_NAME_MAP_FILE,
    STATIC_VARS_PREFIX,
    TOKENIZER_FILES,
    VOCAB_FILE,
    WEIGHTS_FILE,
)

logger = logging.getLogger("ernie1")

# The converter's flag for what the pretraining config calls model_name_or_path.
_FLAG_NAMES = {"model_name_or_path": "--model"}
SEQ_RELATIONSHIP_KEY = "cls.seq_relationship.weight"
WORD_EMBEDDING_KEY = "ernie.embeddings.word_embeddings.weight"


@dataclass(frozen=True)
class StaticSource:
    """Where the static parameters (and optionally their checkpoint directory) are."""

    pdparams: Path
    checkpoint_dir: Optional[Path]


def build_parser() -> argparse.ArgumentParser:
    """Flags of the original converter (`--model`, `--path`, `--output_path`)."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise ToolkitError(message)

    parser = _Parser(description="Static-graph ERNIE checkpoint -> dygraph model_state.pdparams.")
    parser.add_argument(
        "--model",
        default=None,
        help="Built-in name (ernie-1.0, ernie-1.0-base-zh) or a directory with model_config.json; "
        "defaults to the checkpoint directory of --path.",
    )
    parser.add_argument(
        "--path",
        required=True,
        help="Static checkpoint directory, a paddle.static.save prefix (.../static_vars) or its .pdparams file.",
    )
    parser.add_argument(
        "--output_path",
        default=None,
        help="Output directory (model_state.pdparams + model_config.json + tokenizer), or a file ending in "
        ".pdparams; default <model>_converted.pdparams.",
    )
    return parser


def resolve_source(path: str) -> StaticSource:
    """Find the `.pdparams` file and the checkpoint directory (if any) that `--path` designates."""
    given = Path(path)
    if given.is_dir():
        candidate = given / f"{STATIC_VARS_PREFIX}.pdparams"
        if not candidate.is_file():
            raise ToolkitError(
                f"--path {path}: directory has no {STATIC_VARS_PREFIX}.pdparams (not a static checkpoint)"
            )
        return StaticSource(candidate, given)
    for suffix in (".pdparams", ".pdopt", ".json", ".pdmodel"):
        if given.name.endswith(suffix):
            given = given.with_name(given.name[: -len(suffix)])
            break
    candidate = given.with_name(given.name + ".pdparams")
    if not candidate.is_file():
        raise ToolkitError(f"--path {path}: no such static checkpoint ({candidate} not found)")
    return StaticSource(candidate, given.parent)


def load_ernie_config(model: Optional[str], source: StaticSource, static_params: Dict[str, np.ndarray], name_map):
    """ErnieConfig from `--model` (built-in name or config dir), else the checkpoint directory's model_config.json."""
    from paddlenlp.transformers import ErnieConfig

    from ernie1.pretrain.model import BUILTIN_CONFIGS, base_config_dict, find_model_config_file

    if model is None:
        if source.checkpoint_dir is None or find_model_config_file(str(source.checkpoint_dir)) is None:
            raise ToolkitError(f"--model is required: {source.pdparams.parent} has no model_config.json")
        model = str(source.checkpoint_dir)
    elif model not in BUILTIN_CONFIGS and not Path(model).is_dir():
        raise ToolkitError(f"--model {model}: not a built-in name ({', '.join(BUILTIN_CONFIGS)}) nor a directory")
    values = base_config_dict(model)
    word_embedding = static_params.get((name_map or {}).get(WORD_EMBEDDING_KEY, "embedding_0.w_0"))
    if word_embedding is not None:
        if model in BUILTIN_CONFIGS:
            # A built-in architecture is trained with the tokenizer's vocab size: take it from the checkpoint.
            values["vocab_size"] = int(word_embedding.shape[0])
        if int(values.get("hidden_size", 0)) != int(word_embedding.shape[1]):
            raise ToolkitError(
                f"--model {model}: hidden_size {values.get('hidden_size')} does not match the checkpoint's "
                f"{int(word_embedding.shape[1])} ({source.pdparams}); pass the config the checkpoint was trained with"
            )
    return ErnieConfig(**values)


def build_dygraph_model(ernie_config, state: Dict[str, np.ndarray], binary_head: bool, where: str):
    """The dygraph model with `state` loaded; shapes must match exactly."""
    import paddle

    from ernie1.pretrain.model import build_pretraining_model

    model = build_pretraining_model(ernie_config, binary_head=binary_head)
    expected = model.state_dict()
    unknown = sorted(set(state) - set(expected))
    if unknown:
        raise ToolkitError(
            f"{where}: name map has keys this model lacks, e.g. {', '.join(unknown[:3])}; check --model"
        )
    for key, value in expected.items():
        if key in state and list(state[key].shape) != list(value.shape):
            raise ToolkitError(
                f"{where}: {key} has shape {list(state[key].shape)}, --model expects {list(value.shape)}; check --model"
            )
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ToolkitError(
            f"{where}: no weights for {len(missing)} key(s) of the model, e.g. {', '.join(missing[:3])}"
        )
    model.set_state_dict({key: paddle.to_tensor(value) for key, value in state.items()})
    return model


def _write_files(directory: Path, model, ernie_config, source: StaticSource) -> List[str]:
    import paddle

    from ernie1.pretrain.model import model_config_dict

    paddle.save(model.state_dict(), str(directory / WEIGHTS_FILE))
    (directory / MODEL_CONFIG_FILE).write_text(
        json.dumps(model_config_dict(ernie_config), indent=2, sort_keys=True), encoding="utf-8"
    )
    names = [WEIGHTS_FILE, MODEL_CONFIG_FILE]
    if source.checkpoint_dir is not None:
        for name in TOKENIZER_FILES:
            if (source.checkpoint_dir / name).is_file():
                shutil.copyfile(source.checkpoint_dir / name, directory / name)
                names.append(name)
    return names


def _cannot_write(output_path: Path, error: OSError) -> ToolkitError:
    return ToolkitError(f"--output_path {output_path}: cannot write ({error.strerror or error})")


def write_output(output_path: Path, model, ernie_config, source: StaticSource) -> List[Path]:
    """Directory form: weights, model_config.json and tokenizer files; file form: the weights only.

    Written into a temporary sibling first and renamed: a full disk or a permission problem leaves nothing behind.
    """
    import paddle

    temporary = output_path.with_name(f".{output_path.name}.tmp-{os.getpid()}")
    if output_path.name.endswith(".pdparams"):
        if output_path.is_dir():
            raise ToolkitError(f"--output_path {output_path}: is a directory; give a new <name>.pdparams file")
        try:
            output_path.parent.mkdir(parents=True, exist_ok=True)
            paddle.save(model.state_dict(), str(temporary))
            os.replace(temporary, output_path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise _cannot_write(output_path, error) from None
        return [output_path]
    if output_path.exists() and not output_path.is_dir():
        raise ToolkitError(
            f"--output_path {output_path}: is a file, not a directory (end the name in .pdparams for a weights file)"
        )
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        names = _write_files(temporary, model, ernie_config, source)
        output_path.mkdir(exist_ok=True)
        for name in names:
            os.replace(temporary / name, output_path / name)
    except OSError as error:
        raise _cannot_write(output_path, error) from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    if not (output_path / VOCAB_FILE).is_file():
        logger.warning(
            "%s: no tokenizer files next to --path; copy vocab.txt there before from_pretrained", output_path
        )
    return [output_path / name for name in names]


def convert(model: Optional[str], path: str, output_path: Optional[str]) -> List[Path]:
    """Convert the static checkpoint at `path`; returns the files written."""
    from ernie1.pretrain.engines.static_program import static_name_map
    from ernie1.pretrain.static_checkpoint import read_name_map, read_static_params, structured_state

    source = resolve_source(path)
    static_params = read_static_params(str(source.pdparams))
    has_map = source.checkpoint_dir is not None and (source.checkpoint_dir / STATIC_NAME_MAP_FILE).is_file()
    name_map = read_name_map(str(source.checkpoint_dir)) if has_map else None
    ernie_config = load_ernie_config(model, source, static_params, name_map)
    if name_map is None:
        binary_head = _has_sop_head(ernie_config, static_params)
        logger.warning(
            "%s: no %s; rebuilding the name map from the architecture", source.pdparams, STATIC_NAME_MAP_FILE
        )
        name_map = static_name_map(ernie_config, binary_head)
    binary_head = SEQ_RELATIONSHIP_KEY in name_map
    where = f"--path {path}"
    state = structured_state(name_map, static_params, where)
    dygraph_model = build_dygraph_model(ernie_config, state, binary_head, where)
    if output_path is None:
        output_path = f"{Path(model or 'ernie').name}_converted.pdparams"
    return write_output(Path(output_path), dygraph_model, ernie_config, source)


def _has_sop_head(ernie_config, static_params: Dict[str, np.ndarray]) -> bool:
    # ErnieForPretraining has 4 linears after the 6 per layer (pooler, transform, decoder, sop); MaskedLM has 3.
    sop_linear = f"linear_{6 * ernie_config.num_hidden_layers + 3}.w_0"
    return sop_linear in static_params and static_params[sop_linear].shape[-1] == 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = convert(args.model, args.path, args.output_path)
    except FieldError as error:
        raise ToolkitError(error.render(lambda field: _FLAG_NAMES.get(field, f"--{field}"))) from None
    print(f"wrote {', '.join(str(path) for path in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
