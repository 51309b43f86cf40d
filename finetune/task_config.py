"""`finetune/config.yml`: each task's `DefaultArgs` and per-dataset overrides, turned into command-line tokens.

The file is read next to this module, whatever the working directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import yaml

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import FINETUNE_CONFIG_FILE

CONFIG_PATH = Path(__file__).with_name(FINETUNE_CONFIG_FILE)
TASK_SECTIONS = {"seq_cls": "SequenceClassification", "ner": "TokenClassification", "qa": "QuestionAnswering"}
# config.yml keys that are not flags: `batch_size` sets both per-device batch sizes; `metric` only names what the task
# reports (the scripts always compute their task's metric).
YAML_KEY_ALIASES = {"batch_size": ("per_device_train_batch_size", "per_device_eval_batch_size"), "metric": ()}


def _read_config(config_path: Path) -> Dict[str, Any]:
    try:
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ToolkitError(f"cannot read {config_path}: {' '.join(str(error).split())}") from error
    if not isinstance(config, dict):
        raise ToolkitError(f"{config_path}: expected a mapping of task sections")
    return config


def load_task_config(task: str, dataset: Optional[str], config_path: Path = CONFIG_PATH) -> Dict[str, Any]:
    """`DefaultArgs` of the task's config.yml section, updated by the dataset's own entry when it has one."""
    if task not in TASK_SECTIONS:
        raise ValueError(f"unknown fine-tuning task {task!r}; expected one of {sorted(TASK_SECTIONS)}")
    section = _read_config(config_path).get(TASK_SECTIONS[task]) or {}
    values = dict(section.get("DefaultArgs") or {})
    if dataset and dataset in section and dataset != "DefaultArgs":
        values.update(section[dataset] or {})
    return values


def known_datasets(task: str, config_path: Path = CONFIG_PATH) -> List[str]:
    """Dataset names with a section in config.yml for `task`."""
    return [name for name in (_read_config(config_path).get(TASK_SECTIONS[task]) or {}) if name != "DefaultArgs"]


def config_values_to_argv(values: Dict[str, Any], parser: argparse.ArgumentParser, typed: Set[str]) -> List[str]:
    """Turn config.yml values into command-line tokens, skipping whatever the user typed."""
    dests = {action.dest: action for action in parser._actions}
    argv: List[str] = []
    for key, value in values.items():
        targets = YAML_KEY_ALIASES.get(key, (key,))
        for dest in targets:
            if dest not in dests:
                raise ToolkitError(f"{CONFIG_PATH}: unknown key {key!r}; use a flag name of the fine-tuning scripts")
            if dest in typed or value is None:
                continue
            values_list = value if isinstance(value, (list, tuple)) else [value]
            argv.append(f"--{dest}")
            argv.extend(str(item) for item in values_list)
    return argv
