"""What every task (seq_cls, ner, qa) provides to fine-tuning and deployment, and the settings they share.

A task reads its files and named-dataset records into examples, owns its label-list policy, turns examples into
model inputs (`EvalSet.inputs`) and model outputs back into predictions (`EvalSet.decode`), scores them and writes
its prediction file. `finetune/` drives one task through the paddlenlp Trainer, `deploy/` through a
`paddle.inference` predictor: both see only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError

# Model outputs, one entry per output (logits; or start and end logits), each indexable by feature row: the Trainer's
# padded arrays and the predictor's per-batch rows both fit.
Outputs = Tuple[Sequence[np.ndarray], ...]


@dataclass(frozen=True)
class TaskSettings:
    """How examples become features and outputs become predictions; the export records the task's subset."""

    max_seq_length: int = 128
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    label_list: Optional[List[str]] = None
    label_names: Optional[List[str]] = None
    dataset: Optional[str] = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TaskSettings":
        """Settings from a dict that may hold other keys (an export_config.json)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if values.get(f.name) is not None})

    @property
    def names(self) -> List[str]:
        """What to print for each label id: the display names when known, else the labels."""
        return list(self.label_names or self.label_list or [])


@dataclass
class Split:
    """The examples of one split and how to name their source in errors (`--dev_file d.tsv`)."""

    examples: List[Any]
    where: str
    label_names: Optional[List[str]] = None  # a named dataset's own label list (ids -> labels), if it has one


def check_max_seq_length(
    max_seq_length: int, max_position_embeddings: Optional[int], setting: str, source: str
) -> None:
    """A sequence longer than the position table crashes inside a kernel at the first long text: refuse it at start.

    `setting` names where the value came from (`--max_seq_length`), `source` where the table size is recorded; both
    fine-tuning and deployment take the `--max_seq_length` flag.
    """
    if max_position_embeddings is not None and max_seq_length > int(max_position_embeddings):
        raise ToolkitError(
            f"{setting} {max_seq_length}: the model has only {max_position_embeddings} positions "
            f"(max_position_embeddings in {source}); use --max_seq_length {max_position_embeddings} or less"
        )


def as_outputs(predictions: Any) -> Outputs:
    """The Trainer returns one array for a single output and a tuple for several: always a tuple."""
    return tuple(predictions) if isinstance(predictions, tuple) else (predictions,)


class EvalSet(ABC):
    """Examples with their features: model inputs, and model outputs decoded back into one prediction per example."""

    examples: List[Any]

    @abstractmethod
    def inputs(self, with_labels: bool) -> List[Dict[str, Any]]:
        """One dict of lists per feature, for the collator (gold targets only `with_labels`)."""

    @abstractmethod
    def decode(self, outputs: Outputs) -> List[Any]:
        """One prediction per example from the outputs of every feature, in feature order."""

    @property
    @abstractmethod
    def has_gold(self) -> bool:
        """Whether the examples carry gold labels / tags / answers to score against."""

    @abstractmethod
    def score(self, predictions: List[Any]) -> Dict[str, float]:
        """Task metrics of `decode`'s predictions against the gold ones."""

    @abstractmethod
    def write(self, path: Path, predictions: List[Any]) -> Path:
        """Write the task's prediction file."""


class TaskSpec(ABC):
    """One task's specifics; see the module docstring."""

    name: str  # as recorded in export_config.json
    model_class: str  # the paddlenlp.transformers class fine-tuned and exported
    uses_label_list: bool = True
    prediction_file: str = ""
    export_keys: Tuple[str, ...] = ("max_seq_length", "label_list", "dataset")
    # paddlenlp's names where they differ from ours: per dataset {split: paddlenlp split}, and dataset renames.
    named_splits: Mapping[str, Mapping[str, str]] = {}
    dataset_aliases: Mapping[str, str] = {}
    # paddlenlp Trainer label keys when not `labels`; None keeps the Trainer's default.
    label_keys: Optional[Tuple[str, ...]] = None
    # Whether `--packing` applies: several short examples per row (ernie1/tasks/packing.py).
    packs: bool = False
    # The model's classification head (a Linear over the label list) that starts at the training labels' log prior
    # when it is newly initialised (ernie1/tasks/heads.py); None for tasks without one.
    prior_head: Optional[str] = None

    def paddlenlp_split(self, dataset: str, split: str) -> Tuple[str, str]:
        """(paddlenlp dataset name, paddlenlp split name) of our `split` (train, dev, test) of `dataset`."""
        return self.dataset_aliases.get(dataset, dataset), self.named_splits.get(dataset, {}).get(split, split)

    @abstractmethod
    def read_file(self, path: str, flag: str, file_format: Optional[str]) -> List[Any]:
        """Examples of a local file; errors start with `flag path`."""

    @abstractmethod
    def examples_from_records(
        self, dataset: str, records: List[Dict[str, Any]], label_names: Optional[List[str]]
    ) -> List[Any]:
        """Examples of a paddlenlp named dataset's records (`label_names`: its label list, if any)."""

    def label_list(self, train: Split) -> List[str]:
        """The label list built from the training split (tasks with `uses_label_list`)."""
        raise NotImplementedError(f"{self.name} has no label list")

    @abstractmethod
    def check_split(self, split: Split, label_list: Optional[List[str]], needs_gold: bool) -> None:
        """Gold targets present where `needs_gold` (evaluation), and only labels of `label_list` (labels.py policy)."""

    def display_names(self, label_list: Optional[List[str]], dataset: Optional[str]) -> Optional[List[str]]:
        """Names to show for the labels, when they differ from the labels themselves."""
        return None

    @abstractmethod
    def train_inputs(self, split: Split, tokenizer: Any, settings: TaskSettings) -> List[Dict[str, Any]]:
        """Labelled model inputs for training."""

    @abstractmethod
    def eval_set(self, split: Split, tokenizer: Any, settings: TaskSettings) -> EvalSet:
        """Features of a split's examples for evaluation, prediction or deployment."""

    @abstractmethod
    def inference_example(self, item: Any, index: int) -> Any:
        """An example from one deployment input (a text, or a {context, question} dict for QA)."""

    def criterion(self) -> Any:
        """The loss the Trainer applies to the logits; None when the model computes its own."""
        return None

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any:
        """The paddlenlp collator that pads this task's inputs."""

    def packed_model_class(self) -> Any:
        """`model_class` extended to read packed rows back out per example (tasks that `packs`)."""
        raise NotImplementedError(f"{self.name} does not pack")

    def packing_collator(self, tokenizer: Any, max_seq_length: int) -> Any:
        """The collator that packs a batch's features into rows of `max_seq_length` tokens (tasks that `packs`)."""
        raise NotImplementedError(f"{self.name} does not pack")

    def export_settings(self, settings: TaskSettings) -> Dict[str, Any]:
        """The part of `settings` that export_config.json records for this task."""
        return {key: getattr(settings, key) for key in self.export_keys}
