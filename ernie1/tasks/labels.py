"""Label lists: one policy for classification and NER, and value lists in error messages kept short.

The policy (both tasks): the label list comes from the training data (or, without training, from the
`label_list.json` saved with a fine-tuned model); every label met later in evaluation or test data must be one of
it, else a one-line error naming the file, the line and the label. A label the model was never trained on can never
be predicted, so scoring it silently would only lower the metric without saying why.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ernie1.common.errors import ToolkitError

PREVIEW_VALUES = 10  # values listed in an error before "... (N in all)"
PREVIEW_CHARS = 40  # characters shown of one value


def _short(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "...")


def preview(values: Sequence[Any], limit: int = PREVIEW_VALUES) -> str:
    """`['a', 'b']`, or the first `limit` values and `... (N in all)`: a wrong label column must not print 44 KB."""
    values = list(values)
    shown = ", ".join(_short(value) for value in values[:limit])
    if len(values) > limit:
        return f"[{shown}, ... ({len(values)} in all)]"
    return f"[{shown}]"


def sorted_labels(labels: Iterable[str]) -> List[str]:
    """Unique labels, numerically sorted when they are all integers (so "0", "1", "10" keep their ids)."""
    unique = set(labels)
    if unique and all(label.lstrip("-").isdigit() for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def check_known_labels(
    labelled_lines: Iterable[Tuple[int, Optional[str]]], label_list: Sequence[str], where: str
) -> None:
    """Raise a one-line error for the first (line, label) whose label is not in `label_list` (None = unlabelled)."""
    known = set(label_list)
    for line, label in labelled_lines:
        if label is not None and label not in known:
            raise ToolkitError(
                f"{where} line {line}: label {_short(label)} is not one of the training labels {preview(label_list)}"
            )
