"""What pretraining has learned, measured at every evaluation (issue 9): masked-token accuracy, lm perplexity, SOP
accuracy, the token-state cosine (collapse), and the unigram-frequency baseline to compare them with.

Per evaluation batch `quality_sums` adds up counts in paddle ops (dygraph, static programs and the Trainer alike);
`summarize` turns the sums of an evaluation into rates. Sums rather than per-batch rates so that an evaluation's
figure is over all its masked tokens and sequences, whatever the batches held.

Token-state cosine: for each sequence, the mean cosine similarity over the pairs (i != j) of the final hidden states
of its real (non-pad) tokens, averaged over sequences. Random init sits near 0.3; a collapsed model (every token
the same state) near 1 (PaddleNLP #1532's poor fill-mask output after pretraining was never measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np
import paddle

# The collate's padding entries of masked_lm_labels (ernie1.data.collate.IGNORE_LABEL).
IGNORE_LABEL = -1
# Sums an evaluation batch contributes, in the order `quality_sums` stacks them.
QUALITY_SUM_NAMES = ("masked_correct", "masked_count", "sop_correct", "sop_count", "cosine_sum", "sequence_count")
# Rates of an evaluation, as logged (console, VisualDL, metrics.jsonl, PNG).
QUALITY_NAMES = ("masked_accuracy", "lm_perplexity", "sop_accuracy", "token_cosine")
# lm_perplexity = exp(lm_loss), capped so that a diverged run logs a number, not inf.
_MAX_LOG_PERPLEXITY = 50.0
# Train samples whose masked labels give the unigram frequencies, and valid samples it is scored on.
BASELINE_TRAIN_SAMPLES = 2000
BASELINE_VALID_SAMPLES = 500
# Add-alpha smoothing of the unigram table, so that a valid label unseen in the train sample has finite loss.
BASELINE_SMOOTHING = 0.5


def quality_sums(
    prediction_scores: paddle.Tensor,
    sop_scores: Optional[paddle.Tensor],
    sequence_output: paddle.Tensor,
    masked_lm_labels: paddle.Tensor,
    next_sentence_labels: Optional[paddle.Tensor],
    attention_mask: paddle.Tensor,
) -> paddle.Tensor:
    """[6] float32 sums of one batch, in QUALITY_SUM_NAMES order (sop sums are 0 without the SOP head).

    `prediction_scores` [M, V] for the flattened masked positions, `masked_lm_labels` [M, 1] (-1 = padding row),
    `sequence_output` [B, S, H], `attention_mask` [B, 1, 1, S] additive (0 on real tokens, negative on padding).
    """
    labels = masked_lm_labels.reshape([-1])
    real = (labels != IGNORE_LABEL).astype("float32")
    predicted = paddle.argmax(prediction_scores.astype("float32"), axis=-1)
    masked_correct = ((predicted == labels).astype("float32") * real).sum()
    masked_count = real.sum()
    if sop_scores is not None and next_sentence_labels is not None:
        sop_predicted = paddle.argmax(sop_scores.astype("float32"), axis=-1)
        sop_labels = next_sentence_labels.reshape([-1])
        sop_correct = (sop_predicted == sop_labels).astype("float32").sum()
        sop_count = paddle.ones_like(sop_labels, dtype="float32").sum()
    else:
        sop_correct = sop_count = paddle.zeros([], dtype="float32")
    cosine_sum, sequence_count = _token_cosine_sums(sequence_output, attention_mask)
    return paddle.stack([masked_correct, masked_count, sop_correct, sop_count, cosine_sum, sequence_count])


def _token_cosine_sums(sequence_output: paddle.Tensor, attention_mask: paddle.Tensor):
    """(sum over sequences of the mean off-diagonal cosine, number of sequences with >= 2 real tokens)."""
    states = sequence_output.astype("float32")
    # [B, S, 1]: 1 on real tokens (the additive mask is 0 there).
    real = (attention_mask.reshape([paddle.shape(states)[0], -1]) > -1.0).astype("float32").unsqueeze(-1)
    unit = states / paddle.clip(paddle.linalg.norm(states, axis=-1, keepdim=True), min=1e-12)
    unit = unit * real
    # sum_{i,j} u_i . u_j = |sum_i u_i|^2; the n diagonal terms are 1 each.
    total = unit.sum(axis=1)
    pair_sum = (total * total).sum(axis=-1)
    n = real.sum(axis=[1, 2])
    valid = (n > 1.5).astype("float32")
    per_sequence = (pair_sum - n) / paddle.clip(n * (n - 1.0), min=1.0)
    return (per_sequence * valid).sum(), valid.sum()


def summarize(sums: Mapping[str, float], lm_loss: float) -> Dict[str, Optional[float]]:
    """Rates of one evaluation from its summed counts (None where nothing was counted, e.g. no SOP head)."""

    def ratio(numerator: str, denominator: str) -> Optional[float]:
        count = float(sums[denominator])
        return float(sums[numerator]) / count if count > 0 else None

    return {
        "masked_accuracy": ratio("masked_correct", "masked_count"),
        "lm_perplexity": lm_perplexity(lm_loss),
        "sop_accuracy": ratio("sop_correct", "sop_count"),
        "token_cosine": ratio("cosine_sum", "sequence_count"),
    }


def lm_perplexity(lm_loss: float) -> float:
    """exp(lm_loss) in nats, capped at exp(50)."""
    return math.exp(min(float(lm_loss), _MAX_LOG_PERPLEXITY))


@dataclass(frozen=True)
class UnigramBaseline:
    """Predict every masked token by train-split label frequencies: its loss and top-1 accuracy on valid labels."""

    lm_loss: float
    masked_accuracy: float
    train_labels: int
    valid_labels: int
    top_token_id: int

    def as_record(self) -> Dict[str, Any]:
        """The fields under the names metrics.jsonl uses."""
        return {
            "unigram_lm_loss": self.lm_loss,
            "unigram_masked_accuracy": self.masked_accuracy,
            "unigram_train_labels": self.train_labels,
            "unigram_valid_labels": self.valid_labels,
            "unigram_top_token_id": self.top_token_id,
        }


def unigram_baseline(
    train_labels: np.ndarray, valid_labels: np.ndarray, vocab_size: int, smoothing: float = BASELINE_SMOOTHING
) -> UnigramBaseline:
    """The unigram predictor p(t) = (count_t + smoothing) / (N + smoothing * V) from `train_labels`, scored on
    `valid_labels`: mean cross entropy (nats) and the accuracy of always predicting the most frequent train label."""
    train = np.asarray(train_labels, dtype=np.int64).reshape(-1)
    valid = np.asarray(valid_labels, dtype=np.int64).reshape(-1)
    if valid.size == 0:
        raise ValueError("unigram_baseline: no valid labels")
    counts = np.bincount(train, minlength=vocab_size)[:vocab_size].astype(np.float64)
    log_probability = np.log(counts + smoothing) - math.log(counts.sum() + smoothing * vocab_size)
    top = int(np.argmax(counts))
    return UnigramBaseline(
        lm_loss=float(-log_probability[valid].mean()),
        masked_accuracy=float((valid == top).mean()),
        train_labels=int(train.size),
        valid_labels=int(valid.size),
        top_token_id=top,
    )


def _masked_labels(dataset: Any, count: int) -> np.ndarray:
    from ernie1.pretrain.data import checked_sample

    labels = [
        np.asarray(checked_sample(dataset, index)["masked_labels"], dtype=np.int64)
        for index in range(min(count, len(dataset)))
    ]
    return np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)


def dataset_unigram_baseline(
    train: Any,
    valid: Any,
    vocab_size: int,
    train_samples: int = BASELINE_TRAIN_SAMPLES,
    valid_samples: int = BASELINE_VALID_SAMPLES,
) -> Optional[UnigramBaseline]:
    """The baseline from the masked labels of the first `train_samples` train and `valid_samples` valid samples
    (bounded: a few thousand dataset reads, well under a second); None without a valid split."""
    if train is None or valid is None or len(train) == 0 or len(valid) == 0:
        return None
    valid_labels = _masked_labels(valid, valid_samples)
    if valid_labels.size == 0:
        return None
    return unigram_baseline(_masked_labels(train, train_samples), valid_labels, vocab_size)


def describe_baseline(baseline: UnigramBaseline) -> str:
    """The start-of-run line."""
    return (
        f"unigram baseline on valid: lm_loss {baseline.lm_loss:.4f}, masked acc {baseline.masked_accuracy:.4f} "
        f"(predicting every masked token by the train split's label frequencies; {baseline.train_labels} train / "
        f"{baseline.valid_labels} valid masked tokens)"
    )


def reference_token_cosine(states: np.ndarray, lengths: Iterable[int]) -> float:
    """The token-state cosine computed the slow way (numpy, pair by pair), for tests and tools."""
    values = []
    for row, length in enumerate(lengths):
        vectors = states[row, :length].astype(np.float64)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        similarity = vectors @ vectors.T
        if length > 1:
            values.append((similarity.sum() - np.trace(similarity)) / (length * (length - 1)))
    return float(np.mean(values))
