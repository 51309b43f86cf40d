"""ERNIE 1.0 config (built locally, no download), the pretraining model, recompute and the criterion (REFERENCE §9)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import paddle
import paddle.nn.functional as F
from paddlenlp.transformers import ErnieConfig, ErnieForMaskedLM, ErnieForPretraining

from ernie1.common.errors import FieldError
from ernie1.common.formats import MODEL_CONFIG_FILES, WEIGHTS_FILE
from ernie1.pretrain.attention import PADDLE, resolve_attention_impl, set_attention_impl
from ernie1.pretrain.packing import PackedErnieForPretraining

logger = logging.getLogger("ernie1")

# ernie-1.0-base-zh (REFERENCE §9); written out here so a from-scratch run never touches the network.
ERNIE_1_0_CONFIG: Dict[str, Any] = {
    "vocab_size": 18000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "relu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 513,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "pad_token_id": 0,
    "layer_norm_eps": 1e-12,
}
BUILTIN_CONFIGS: Dict[str, Dict[str, Any]] = {"ernie-1.0": ERNIE_1_0_CONFIG, "ernie-1.0-base-zh": ERNIE_1_0_CONFIG}
_ALLOWED_OVERRIDES = set(ERNIE_1_0_CONFIG) | {"task_type_vocab_size", "use_task_id", "pool_act"}


def parse_model_config_overrides(text: Optional[str]) -> Dict[str, Any]:
    """`--model_config`: a JSON file, a JSON object, or inline `key=value,key=value`; returns the overrides."""
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        overrides = _loads_or_fail(text, "{model_config}", "model_config")
    elif "=" not in text:
        path = Path(text)
        if not path.is_file():
            raise FieldError(
                "model_config",
                f"{{model_config}} {text}: no such JSON file (or pass inline sizes like hidden_size=64)",
            )
        overrides = _loads_or_fail(path.read_text(encoding="utf-8"), f"{{model_config}} {text}", "model_config")
    else:
        overrides = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise FieldError("model_config", f"{{model_config}}: {item!r} is not key=value")
            overrides[key.strip()] = _parse_scalar(value.strip())
    if not isinstance(overrides, dict):
        raise FieldError("model_config", "{model_config} must describe a JSON object of model config fields")
    unknown = sorted(set(overrides) - _ALLOWED_OVERRIDES)
    if unknown:
        raise FieldError(
            "model_config",
            f"{{model_config}}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ALLOWED_OVERRIDES))}",
        )
    return overrides


def _loads_or_fail(text: str, where: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FieldError(field, f"{where}: invalid JSON ({error.msg} at line {error.lineno})") from None


def _parse_scalar(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def find_model_config_file(directory: str) -> Optional[Path]:
    """`<directory>/model_config.json` (ours and the original's) or `config.json` (paddlenlp), else None."""
    for name in MODEL_CONFIG_FILES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def base_config_dict(model_name_or_path: str) -> Dict[str, Any]:
    """The starting config: a built-in name, or the JSON config saved in a checkpoint directory."""
    if model_name_or_path in BUILTIN_CONFIGS:
        return dict(BUILTIN_CONFIGS[model_name_or_path])
    if Path(model_name_or_path).is_dir():
        config_file = find_model_config_file(model_name_or_path)
        if config_file is None:
            raise FieldError(
                "model_name_or_path",
                f"{{model_name_or_path}} {model_name_or_path}: directory has no {' or '.join(MODEL_CONFIG_FILES)}",
            )
        return _loads_or_fail(config_file.read_text(encoding="utf-8"), str(config_file), "model_name_or_path")
    raise FieldError(
        "model_name_or_path",
        f"{{model_name_or_path}} {model_name_or_path}: not a built-in config ({', '.join(BUILTIN_CONFIGS)}) "
        "nor a checkpoint directory",
    )


def build_ernie_config(spec, vocab_size: int) -> ErnieConfig:
    """ErnieConfig for a `ModelSpec`; `vocab_size` is the tokenizer's base vocab, which the embedding must cover."""
    values = base_config_dict(spec.model_name_or_path)
    overrides = parse_model_config_overrides(spec.model_config)
    from_scratch = spec.model_name_or_path in BUILTIN_CONFIGS
    if from_scratch and "vocab_size" not in overrides:
        # A built-in architecture trained from scratch takes its embedding size from the tokenizer it is paired with.
        values["vocab_size"] = vocab_size
    values.update(overrides)
    values["hidden_dropout_prob"] = spec.hidden_dropout_prob
    values["attention_probs_dropout_prob"] = spec.attention_probs_dropout_prob
    if int(values.get("vocab_size", 0)) < vocab_size:
        field = "model_config" if "vocab_size" in overrides else "model_name_or_path"
        source = "{model_config}" if "vocab_size" in overrides else f"{{model_name_or_path}} {spec.model_name_or_path}"
        raise FieldError(
            field,
            f"{source}: vocab_size {values.get('vocab_size')} is smaller than the tokenizer's vocab ({vocab_size})",
        )
    hidden, heads = int(values.get("hidden_size", 0)), int(values.get("num_attention_heads", 0))
    if hidden <= 0 or heads <= 0 or hidden % heads != 0:
        raise FieldError(
            "model_config",
            f"{{model_config}}: hidden_size {hidden} must be a positive multiple of num_attention_heads {heads}",
        )
    return ErnieConfig(**values)


def model_config_dict(ernie_config: ErnieConfig) -> Dict[str, Any]:
    """The architecture fields of an ErnieConfig (what `model_config.json` stores and resume compares)."""
    full = ernie_config.to_dict()
    return {key: full[key] for key in sorted(_ALLOWED_OVERRIDES) if key in full}


def architecture_fingerprint(ernie_config: ErnieConfig) -> Dict[str, Any]:
    """The fields a resume must not change (dropouts may change)."""
    values = model_config_dict(ernie_config)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        values.pop(key, None)
    return values


def build_pretraining_model(
    ernie_config: ErnieConfig,
    binary_head: bool = True,
    attention_impl: str = PADDLE,
    device: Optional[str] = None,
    pack_samples: bool = False,
) -> paddle.nn.Layer:
    """`ErnieForPretraining` (MLM + SOP heads), or `ErnieForMaskedLM` without the binary head, as the original.

    `pack_samples` builds the SOP model that also reads packed rows (ernie1.pretrain.packing; same parameters).

    `attention_impl` (paddle, sdpa, auto = the fastest on `device`) only swaps the attention computation: parameter
    names and state_dict keys are paddlenlp's either way, so checkpoints move between implementations.
    """
    model_class = ErnieForMaskedLM
    if binary_head:
        model_class = PackedErnieForPretraining if pack_samples else ErnieForPretraining
    model = model_class(ernie_config)
    set_attention_impl(model, resolve_attention_impl(attention_impl, device))
    return model


def resolved_attention_impl(config, device: str) -> str:
    """The attention implementation a run builds (config.model.attention_impl, `auto` resolved for `device`)."""
    return resolve_attention_impl(config.model.attention_impl, device)


def enable_recompute(model: paddle.nn.Layer) -> None:
    """Recompute encoder-layer activations in backward (memory for compute); state_dict keys stay unchanged."""
    # paddlenlp patches TransformerEncoder.forward to honour this attribute (positional args, rng state preserved).
    model.ernie.encoder.enable_recompute = True


def load_model_weights(model: paddle.nn.Layer, directory: str) -> None:
    """Load `<directory>/model_state.pdparams` into `model`; a missing, unreadable or mismatched file is one line."""
    path = Path(directory) / WEIGHTS_FILE
    where = f"{{model_name_or_path}} {directory}: {path.name}"
    if not path.is_file():
        raise FieldError("model_name_or_path", f"{where} not found (a checkpoint directory holds {WEIGHTS_FILE})")
    try:
        state = paddle.load(str(path))
    except Exception as error:  # noqa: BLE001 - a truncated file fails anywhere in pickle/zip
        raise FieldError("model_name_or_path", f"{where} is unreadable ({type(error).__name__}); truncated?") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise FieldError(
            "model_name_or_path", f"{where}: missing {len(missing)} parameter(s) of this model, e.g. {missing[0]}"
        )
    for key, value in expected.items():
        if list(state[key].shape) != list(value.shape):
            raise FieldError(
                "model_name_or_path",
                f"{where}: {key} has shape {list(state[key].shape)}, the model expects {list(value.shape)}",
            )
    model.set_state_dict({key: state[key] for key in expected})


def build_checked_ernie_config(config, vocab_size: int) -> ErnieConfig:
    """The ErnieConfig of a PretrainConfig, refusing samples longer than its position table."""
    ernie_config = build_ernie_config(config.model, vocab_size)
    max_positions = int(ernie_config.max_position_embeddings)
    if config.data.max_seq_length > max_positions:
        raise FieldError(
            "max_seq_len",
            f"{{max_seq_len}} {config.data.max_seq_length} exceeds the model's max_position_embeddings {max_positions}",
        )
    return ernie_config


def check_continue_training(config) -> None:
    """--continue_training needs weights: a built-in name has none (no download)."""
    name = config.model.model_name_or_path
    if config.model.continue_training and name in BUILTIN_CONFIGS:
        raise FieldError(
            "continue_training",
            f"{{continue_training}} needs trained weights: {{model_name_or_path}} {name} is a built-in config "
            "(random init, no download); pass a checkpoint directory instead",
            "model_name_or_path",
        )


def build_model(config, ernie_config: ErnieConfig, device: str) -> paddle.nn.Layer:
    """The pretraining model: a built-in config from scratch, or a checkpoint dir with its weights (as the original)."""
    check_continue_training(config)
    model = build_pretraining_model(
        ernie_config,
        config.model.binary_head,
        resolved_attention_impl(config, device),
        pack_samples=config.runtime.pack_samples,
    )
    if config.model.model_name_or_path not in BUILTIN_CONFIGS:
        # As the original: a checkpoint directory is always a warm start (from_pretrained), flag or not.
        load_model_weights(model, config.model.model_name_or_path)
    if config.model.use_recompute:
        enable_recompute(model)
    return model


class PretrainingCriterion(paddle.nn.Layer):
    """MLM cross entropy averaged over real labels only (labels != -1, REFERENCE §18.4) plus SOP cross entropy."""

    def __init__(self, binary_head: bool = True):
        super().__init__()
        self.binary_head = binary_head

    def forward(
        self,
        prediction_scores: paddle.Tensor,
        seq_relationship_score: Optional[paddle.Tensor],
        masked_lm_labels: paddle.Tensor,
        next_sentence_labels: Optional[paddle.Tensor] = None,
    ) -> Tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        """Returns (total, lm, sop); sop is 0 without the binary head."""
        labels = masked_lm_labels.reshape([-1, 1])
        per_token = F.cross_entropy(prediction_scores.astype("float32"), labels, ignore_index=-1, reduction="none")
        real = (labels != -1).astype("float32")
        # The multiple-of-8 padding rows carry label -1: dividing by their count would dilute the loss (§18.4).
        lm_loss = (per_token.reshape([-1, 1]) * real).sum() / paddle.clip(real.sum(), min=1.0)
        if self.binary_head and seq_relationship_score is not None:
            sop_loss = F.cross_entropy(
                seq_relationship_score.astype("float32"), next_sentence_labels.reshape([-1, 1]), reduction="mean"
            )
        else:
            sop_loss = paddle.zeros([], dtype="float32")
        return lm_loss + sop_loss, lm_loss, sop_loss


def forward_pretraining(model: paddle.nn.Layer, batch: Dict[str, paddle.Tensor]):
    """(prediction_scores, seq_relationship_score or None) for a collated batch dict, packed or not."""
    inputs = {key: batch[key] for key in ("input_ids", "token_type_ids", "attention_mask", "masked_positions")}
    if "sample_starts" in batch:
        # Packed rows: positions restart per sample; the SOP head (absent without binary_head) pools each [CLS].
        inputs["position_ids"] = batch["position_ids"]
        if isinstance(unwrapped(model), ErnieForPretraining):
            inputs["sample_starts"] = batch["sample_starts"]
    outputs = model(**inputs)
    if isinstance(outputs, (tuple, list)):
        return outputs[0], outputs[1] if len(outputs) > 1 else None
    return outputs, None


def unwrapped(model: paddle.nn.Layer) -> paddle.nn.Layer:
    """The model inside a DataParallel wrapper (the model itself otherwise)."""
    return getattr(model, "_layers", model)


def forward_with_states(model: paddle.nn.Layer, batch: Mapping[str, Any]):
    """(prediction_scores, sop_scores or None, final hidden states [B,S,H]): the heads of the pretraining model over
    the encoder, as its forward runs them, keeping the encoder output for the quality figures (evaluation only).

    `batch` holds the collate's tensors (dygraph) or the program's feeds (static; with `position_ids`).
    """
    model = unwrapped(model)
    sequence_output, pooled_output = model.ernie(
        batch["input_ids"],
        token_type_ids=batch["token_type_ids"],
        position_ids=batch.get("position_ids"),
        attention_mask=batch["attention_mask"],
    )[:2]
    if isinstance(model, ErnieForPretraining):
        prediction_scores, sop_scores = model.cls(sequence_output, pooled_output, batch["masked_positions"])
    else:
        prediction_scores, sop_scores = model.cls(sequence_output, masked_positions=batch["masked_positions"]), None
    return prediction_scores, sop_scores, sequence_output
