"""The files fine-tuning writes and deployment reads: `label_list.json`, `export_config.json`, the tokenizer beside them.

`export_config.json` records `task`, `input_names`, `max_position_embeddings` and the task's `TaskSettings` subset
(`max_seq_length`, labels, QA windowing), so a deployment rebuilds exactly the features the model was trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import EXPORT_CONFIG_FILE, LABEL_LIST_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE

EXPORT_INPUT_NAMES = ("input_ids", "token_type_ids")


def write_json(path: Path, payload: Any) -> Path:
    """Write JSON (UTF-8, indented) through a temporary file so a crash leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_label_list(directory: Path, label_list: Sequence[str]) -> Path:
    """`label_list.json` (class id -> label) next to a fine-tuned model."""
    return write_json(Path(directory) / LABEL_LIST_FILE, list(label_list))


def saved_label_list(directory: Path) -> Optional[List[str]]:
    """The `label_list.json` saved with a fine-tuned model, or None when there is none."""
    path = Path(directory) / LABEL_LIST_FILE
    if not path.is_file():
        return None
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ToolkitError(f"{path}: not a JSON label list ({error})") from error
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ToolkitError(f"{path}: expected a JSON list of label strings")
    return labels


def export_config(task: str, settings: Dict[str, Any], max_position_embeddings: Optional[int]) -> Dict[str, Any]:
    """The content of export_config.json."""
    config: Dict[str, Any] = {"task": task, "input_names": list(EXPORT_INPUT_NAMES), **settings}
    if max_position_embeddings is not None:
        config["max_position_embeddings"] = int(max_position_embeddings)
    return config


def read_export_config(model_dir: Path, where: str) -> Dict[str, Any]:
    """`export_config.json` of an export directory; `where` names the directory in errors (`--model_dir d`)."""
    path = Path(model_dir) / EXPORT_CONFIG_FILE
    if not path.is_file():
        raise ToolkitError(f"{where}: {EXPORT_CONFIG_FILE} is missing; re-export with --do_export")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "msg", None) or getattr(error, "reason", error)
        raise ToolkitError(f"{path}: not valid JSON ({reason}); re-export with --do_export") from error
    if not isinstance(config, dict) or "task" not in config:
        raise ToolkitError(f"{path}: has no 'task'; re-export with --do_export")
    return config


def load_tokenizer_dir(directory: Path) -> Any:
    """The tokenizer saved in a checkpoint or export directory (`vocab.txt`, optionally `tokenizer_config.json`)."""
    from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer

    directory = Path(directory)
    if (directory / TOKENIZER_CONFIG_FILE).is_file():
        return AutoTokenizer.from_pretrained(str(directory))
    return ErnieTokenizer(str(directory / VOCAB_FILE))
