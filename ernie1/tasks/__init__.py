"""Layer 4: the downstream tasks (seq_cls, ner, qa), shared by fine-tuning and deployment; see `spec.py`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ernie1.tasks.spec import TaskSpec

TASK_MODULES = {"seq_cls": "ernie1.tasks.seq_cls", "ner": "ernie1.tasks.ner", "qa": "ernie1.tasks.qa"}


def get_task(name: str) -> "TaskSpec":
    """The task spec registered under `name` (as recorded in export_config.json)."""
    if name not in TASK_MODULES:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASK_MODULES)}")
    return import_module(TASK_MODULES[name]).TASK
