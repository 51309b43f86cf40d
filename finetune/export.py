"""`--do_export`: the fine-tuned model as a `paddle.inference` program, with its tokenizer and export_config.json."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional

from ernie1.common.formats import EXPORT_CONFIG_FILE, EXPORT_DIR, EXPORT_PREFIX
from ernie1.pretrain.attention import get_attention_impl, set_attention_impl
from ernie1.tasks.outputs import EXPORT_INPUT_NAMES, export_config, write_json
from ernie1.text.tokenizer import save_tokenizer_files

logger = logging.getLogger(__name__)


def export_model(
    model: Any,
    tokenizer: Any,
    output_dir: str,
    task: str,
    settings: Dict[str, Any],
    export_dir: Optional[str] = None,
    attention_impl: Optional[str] = None,
) -> Path:
    """`jit.save` the model into `<output_dir>/export` (or `export_dir`) with tokenizer files and export_config.json.

    `settings` is the task's part of TaskSettings (`TaskSpec.export_settings`); it must hold `max_seq_length`.
    `attention_impl` (paddle or sdpa) is the attention traced into the program; the model gets its own back after.
    """
    import paddle

    if "max_seq_length" not in settings:
        raise ValueError("export_model: settings must contain max_seq_length")
    target = Path(export_dir) if export_dir else Path(output_dir) / EXPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    input_spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=name) for name in EXPORT_INPUT_NAMES]
    was_training, trained_with = model.training, get_attention_impl(model)
    model.eval()
    set_attention_impl(model, attention_impl or trained_with)
    try:
        # jit.save traces a copy of forward; the dygraph model stays usable afterwards.
        paddle.jit.save(model, str(target / EXPORT_PREFIX), input_spec=input_spec)
    finally:
        set_attention_impl(model, trained_with)
        if was_training:
            model.train()
    save_tokenizer_files(tokenizer, target)
    max_positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    write_json(target / EXPORT_CONFIG_FILE, export_config(task, settings, max_positions))
    logger.info("exported the inference model to %s", target)
    return target
