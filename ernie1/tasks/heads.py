"""What the classification heads (seq_cls, ner) need to learn from a small training set: a per-token loss averaged
over the labelled tokens, and a fresh head that starts at the training labels' prior.

- paddle 3.3's `cross_entropy(reduction="mean")` divides by the labelled positions only when `ignore_index >= 0`;
  with the default `ignore_index=-100` (what paddlenlp's ErnieForTokenClassification and collators use) it divides by
  every position, padding and continuation pieces included, so the NER loss shrank with the padding of each batch.
- A freshly initialised head has a zero bias, and Adam moves it by about the learning rate per step. For NER, where
  ~96% of MSRA's tags are O, a small random encoder instead reaches the prior within ~20 steps by collapsing every
  token state onto one direction, and then stays there (measured: 300 sentences, 2 x 128, lr 2e-3: final states with
  pairwise cosine 1.000, identical logits for every token, bias moved by 0.03, entity F1 0.0). Starting the bias at
  the log prior puts the model at the prior from step 0, so the encoder is never pushed to encode it (same run: F1 0.97).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Sequence

import numpy as np

IGNORE_INDEX = -100  # the label of padding, specials and continuation pieces (paddle's default ignore_index)
PRIOR_SMOOTHING = 1.0  # add-one counts: a class missing from the training labels gets a finite log prior


def labelled_mean_cross_entropy(logits: Any, labels: Any, ignore_index: int = IGNORE_INDEX) -> Any:
    """Cross-entropy of `logits` [..., C] against `labels` [...] summed over labelled positions / their count."""
    import paddle
    import paddle.nn.functional as F

    num_classes = logits.shape[-1]
    flat_labels = labels.reshape([-1])
    per_position = F.cross_entropy(
        logits.reshape([-1, num_classes]), flat_labels, ignore_index=ignore_index, reduction="none"
    ).reshape([-1])
    labelled = (flat_labels != ignore_index).astype(per_position.dtype)
    # A batch with no labelled position (all continuation pieces) has loss 0, not 0/0.
    return (per_position * labelled).sum() / paddle.clip(labelled.sum(), min=1.0)


class LabelledMeanCrossEntropy:
    """A Trainer `criterion`: `labelled_mean_cross_entropy(logits, labels)` (the model returns logits alone)."""

    def __call__(self, logits: Any, labels: Any) -> Any:
        return labelled_mean_cross_entropy(logits, labels)


def label_counts(features: Iterable[Dict[str, Any]], num_classes: int) -> np.ndarray:
    """How often each class id occurs in the features' `labels` (a class id, or one per token; IGNORE_INDEX skipped)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for feature in features:
        ids = np.asarray(feature["labels"]).reshape(-1)
        ids = ids[(ids >= 0) & (ids < num_classes)]
        counts += np.bincount(ids, minlength=num_classes)
    return counts


def log_prior(counts: Sequence[int], smoothing: float = PRIOR_SMOOTHING) -> np.ndarray:
    """log p(class) from counts with add-`smoothing` (so that softmax(log_prior) is the smoothed prior exactly)."""
    smoothed = np.asarray(counts, dtype=np.float64) + smoothing
    return np.log(smoothed / smoothed.sum())


def is_fresh_head(classifier: Any) -> bool:
    """Whether the Linear head was newly initialised rather than loaded.

    paddle initialises a Linear bias to zeros and paddlenlp's `_init_weights` sets only the weights, so a head that
    `from_pretrained` did not find in the checkpoint has an all-zero bias; a trained head never has one.
    """
    bias = getattr(classifier, "bias", None)
    return bias is not None and not np.any(bias.numpy())


def init_head_bias_to_prior(classifier: Any, counts: Sequence[int]) -> bool:
    """Set a fresh head's bias to the log prior of `counts`; a loaded head is left as it is. True if it was set."""
    if not is_fresh_head(classifier) or int(np.sum(counts)) == 0:
        return False
    if classifier.bias.shape[0] != len(counts):
        raise ValueError(f"head has {classifier.bias.shape[0]} outputs but {len(counts)} label counts")
    classifier.bias.set_value(log_prior(counts).astype(classifier.bias.numpy().dtype))
    return True
