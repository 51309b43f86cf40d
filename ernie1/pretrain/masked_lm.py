"""Any checkpoint the toolkit writes, as a masked LM in eval mode, and batched predictions at [MASK] positions.

Recognised directories (the first that fits wins):

- `model_state.pdparams` + `model_config.json`: run_pretrain.py's `model_last` / `model_<step>`, or the converter's
  output directory (kind `dygraph`);
- `model_state.pdparams` + `config.json`: paddlenlp `save_pretrained`, i.e. the Trainer's `checkpoint-<N>` and its
  final output_dir (kind `paddlenlp`);
- `static_vars.pdparams` + `static_name_map.json` + `model_config.json`: run_pretrain_static.py's checkpoints,
  converted in memory as `converter/params_static_to_dygraph.py` would (kind `static`).

The weights may be ErnieForPretraining's or ErnieForMaskedLM's: both carry the MLM head `cls.predictions.*`. The
tokenizer is the checkpoint's own `vocab.txt` (+ `tokenizer_config.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import paddle
from paddlenlp.transformers import ErnieConfig

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import (
    LAST_CHECKPOINT,
    MODEL_CONFIG_FILE,
    MODEL_CONFIG_FILES,
    STATIC_NAME_MAP_FILE,
    STATIC_VARS_PREFIX,
    WEIGHTS_FILE,
)
from ernie1.pretrain.checkpoint import CheckpointUnreadable, load_file
from ernie1.pretrain.model import build_pretraining_model, find_model_config_file, forward_pretraining
from ernie1.pretrain.static_checkpoint import read_name_map, read_static_params, structured_state
from ernie1.text.tokenizer import load_tokenizer

MLM_HEAD_PREFIX = "cls.predictions."
SOP_HEAD_KEY = "cls.seq_relationship.weight"
STATIC_PARAMS_FILE = f"{STATIC_VARS_PREFIX}.pdparams"
RANDOM_INIT = "random_init"


@dataclass
class MaskedLM:
    """A model in eval mode with its tokenizer; `name` is what reports call it, `kind` how it was stored."""

    model: paddle.nn.Layer
    tokenizer: Any
    name: str
    kind: str
    max_positions: int
    vocab_size: int


def read_architecture(path: str, flag: str) -> Dict[str, Any]:
    """The model config of a checkpoint directory (`model_config.json`, else `config.json`) or of a JSON file."""
    given = Path(path)
    config_file = find_model_config_file(str(given)) if given.is_dir() else given
    if config_file is None or not config_file.is_file():
        what = f"directory has no {' or '.join(MODEL_CONFIG_FILES)}" if given.is_dir() else "no such file"
        raise ToolkitError(f"{flag} {path}: {what}")
    try:
        values = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ToolkitError(f"{flag} {config_file}: not a readable JSON model config ({error})") from None
    if not isinstance(values, dict) or not isinstance(values.get("vocab_size"), int):
        raise ToolkitError(f"{flag} {config_file}: not a model config (no integer vocab_size)")
    return values


def _eval_config(values: Mapping[str, Any]) -> ErnieConfig:
    # Eval mode already disables dropout; zero rates make the config say so too.
    return ErnieConfig(**{**dict(values), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})


def _not_a_checkpoint(directory: Path, flag: str) -> ToolkitError:
    inner = [name for name in (LAST_CHECKPOINT,) if (directory / name).is_dir()]
    inner += sorted(p.name for p in directory.glob("checkpoint-*") if p.is_dir())[-1:]
    hint = f"; it holds {' and '.join(inner)}: pass that directory" if inner else ""
    return ToolkitError(
        f"{flag} {directory}: not a checkpoint directory (no {WEIGHTS_FILE}, nor {STATIC_PARAMS_FILE} + "
        f"{STATIC_NAME_MAP_FILE}){hint}"
    )


def read_checkpoint_state(directory: str, flag: str = "--model_dir") -> Tuple[Dict[str, Any], Dict[str, Any], str]:
    """(architecture, {structured key: weights}, kind) of a checkpoint directory; one-line errors naming it."""
    path = Path(directory)
    if not path.is_dir():
        raise ToolkitError(f"{flag} {directory}: no such directory")
    if (path / WEIGHTS_FILE).is_file():
        values = read_architecture(directory, flag)
        kind = "dygraph" if (path / MODEL_CONFIG_FILE).is_file() else "paddlenlp"
        try:
            state = load_file(path / WEIGHTS_FILE, return_numpy=True)
        except CheckpointUnreadable as error:
            raise ToolkitError(f"{flag} {directory}: {error}") from None
        if not isinstance(state, dict):
            raise ToolkitError(f"{flag} {directory}: {WEIGHTS_FILE} is not a state dict")
        return values, state, kind
    if (path / STATIC_PARAMS_FILE).is_file() and (path / STATIC_NAME_MAP_FILE).is_file():
        if not (path / MODEL_CONFIG_FILE).is_file():
            raise ToolkitError(f"{flag} {directory}: static checkpoint without {MODEL_CONFIG_FILE}")
        values = read_architecture(directory, flag)
        where = f"{flag} {directory}"
        try:
            static_params = read_static_params(str(path / STATIC_PARAMS_FILE))
            state = structured_state(read_name_map(directory), static_params, where)
        except ToolkitError as error:
            message = str(error)
            raise ToolkitError(message if message.startswith(where) else f"{where}: {message}") from None
        return values, state, "static"
    raise _not_a_checkpoint(path, flag)


def _set_weights(model: paddle.nn.Layer, state: Mapping[str, Any], where: str) -> None:
    """Load `state` into `model`; every parameter must be there with its exact shape."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ToolkitError(f"{where}: the weights lack {len(missing)} parameter(s) of the model, e.g. {missing[0]}")
    for key, param in own.items():
        if list(np.shape(state[key])) != list(param.shape):
            raise ToolkitError(
                f"{where}: {key} has shape {list(np.shape(state[key]))}, the config says {list(param.shape)}"
            )
    model.set_state_dict({key: paddle.to_tensor(np.asarray(state[key]), dtype=own[key].dtype) for key in own})


def _masked_lm(model: paddle.nn.Layer, tokenizer: Any, name: str, kind: str, where: str) -> MaskedLM:
    config = model.config
    if len(tokenizer) > int(config.vocab_size):
        raise ToolkitError(
            f"{where}: the vocabulary has {len(tokenizer)} tokens but the model only {config.vocab_size} "
            "(vocab_size): the checkpoint's vocab.txt is not the one it was trained with"
        )
    model.eval()
    return MaskedLM(model, tokenizer, name, kind, int(config.max_position_embeddings), int(config.vocab_size))


def load_masked_lm(directory: str, flag: str = "--model_dir") -> MaskedLM:
    """The masked LM stored in `directory` (any kind in the module docstring), in eval mode, with its tokenizer."""
    values, state, kind = read_checkpoint_state(directory, flag)
    where = f"{flag} {directory}"
    if not any(key.startswith(MLM_HEAD_PREFIX) for key in state):
        raise ToolkitError(
            f"{where}: the weights have no masked-LM head ({MLM_HEAD_PREFIX}*): a fine-tuned model? pass a "
            "pretraining checkpoint"
        )
    tokenizer = load_tokenizer(directory, flag=flag)
    model = build_pretraining_model(_eval_config(values), binary_head=SOP_HEAD_KEY in state)
    _set_weights(model, state, where)
    return _masked_lm(model, tokenizer, directory, kind, where)


def random_masked_lm(values: Mapping[str, Any], tokenizer: Any, seed: int, where: str) -> MaskedLM:
    """A freshly initialised ErnieForPretraining (the toolkit's from-scratch model), seeded: the probe's floor."""
    paddle.seed(seed)
    model = build_pretraining_model(_eval_config(values), binary_head=True)
    return _masked_lm(model, tokenizer, RANDOM_INIT, RANDOM_INIT, where)


def pad_batch(
    sequences: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_id: int
) -> Dict[str, np.ndarray]:
    """Model inputs of one batch: ids padded to the longest, the attention mask, and the flattened masked positions
    `i * S + p` (as `ernie1.data.collate` lays them out)."""
    length = max(len(ids) for ids in sequences)
    input_ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), 1, 1, length), dtype=np.float32)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, ..., len(ids) :] = -1e4
    flat = [row * length + p for row, row_positions in enumerate(positions) for p in row_positions]
    return {
        "input_ids": input_ids,
        "token_type_ids": np.zeros_like(input_ids),
        "attention_mask": attention_mask,
        "masked_positions": np.asarray(flat, dtype=np.int64),
    }


def predict_masked(
    masked_lm: MaskedLM,
    sequences: Sequence[Sequence[int]],
    positions: Sequence[Sequence[int]],
    batch_size: int = 32,
    top_k: int = 1,
) -> List[Tuple[np.ndarray, np.ndarray]]:
    """For each sequence, the `top_k` token ids [K, top_k] and their probabilities at its masked positions (K of
    them), most likely first; one forward per `batch_size` sequences, in the order given."""
    results: List[Tuple[np.ndarray, np.ndarray]] = []
    pad_id = int(masked_lm.tokenizer.pad_token_id)
    with paddle.no_grad():
        for start in range(0, len(sequences), batch_size):
            batch_positions = positions[start : start + batch_size]
            batch = pad_batch(sequences[start : start + batch_size], batch_positions, pad_id)
            scores, _ = forward_pretraining(masked_lm.model, {k: paddle.to_tensor(v) for k, v in batch.items()})
            probabilities = paddle.nn.functional.softmax(scores.astype("float32"), axis=-1)
            values, ids = paddle.topk(probabilities, k=min(top_k, masked_lm.vocab_size), axis=-1)
            ids, values = ids.numpy(), values.numpy()
            offset = 0
            for row_positions in batch_positions:
                results.append(
                    (ids[offset : offset + len(row_positions)], values[offset : offset + len(row_positions)])
                )
                offset += len(row_positions)
    return results


def encode_masked_text(text: str, tokenizer: Any, mask_token: Optional[str] = None) -> Tuple[List[int], List[int]]:
    """`[CLS] tokens [SEP]` of a text with literal `[MASK]` marks, and the positions of the masks (the tokenizer
    would cut a literal `[MASK]` into `[`, `ma`, `##sk`, `]`)."""
    mask_token = mask_token or tokenizer.mask_token
    ids = [int(tokenizer.cls_token_id)]
    positions: List[int] = []
    for index, piece in enumerate(text.split(mask_token)):
        if index:
            positions.append(len(ids))
            ids.append(int(tokenizer.mask_token_id))
        ids.extend(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(piece)))
    ids.append(int(tokenizer.sep_token_id))
    return ids, positions


@dataclass(frozen=True)
class FilledText:
    """A text with each `[MASK]` replaced by the top prediction, and the top-k (token, probability) per mask."""

    filled: str
    candidates: List[List[Tuple[str, float]]]


def _plain(token: str) -> str:
    return token[2:] if token.startswith("##") and len(token) > 2 else token


def fill_masks(masked_lm: MaskedLM, texts: Sequence[str], top_k: int = 5, batch_size: int = 32) -> List[FilledText]:
    """Predict every `[MASK]` of each text (one forward per text batch); texts must fit the position table."""
    tokenizer = masked_lm.tokenizer
    encoded = [encode_masked_text(text, tokenizer) for text in texts]
    for number, (ids, positions) in enumerate(encoded, start=1):
        if not positions:
            raise ToolkitError(f"text {number} has no {tokenizer.mask_token}; write one per character to predict")
        if len(ids) > masked_lm.max_positions:
            raise ToolkitError(
                f"text {number}: {len(ids)} tokens with [CLS] and [SEP], {masked_lm.name} has only "
                f"{masked_lm.max_positions} positions; shorten it"
            )
    predictions = predict_masked(masked_lm, [e[0] for e in encoded], [e[1] for e in encoded], batch_size, top_k)
    filled = []
    for text, (ids, probabilities) in zip(texts, predictions):
        candidates = [
            [(_plain(token), float(p)) for token, p in zip(tokenizer.convert_ids_to_tokens(row.tolist()), row_p)]
            for row, row_p in zip(ids, probabilities)
        ]
        pieces = text.split(tokenizer.mask_token)
        words = [options[0][0] for options in candidates] + [""]
        filled.append(FilledText("".join(piece + word for piece, word in zip(pieces, words)), candidates))
    return filled
