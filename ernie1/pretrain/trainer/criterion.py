"""The Trainer's criterion: the shared PretrainingCriterion, keeping on-device sums of lm/sop for the callback."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import paddle


class CriterionWrapper(paddle.nn.Layer):
    """The Trainer's criterion: `(outputs, (masked_lm_labels, next_sentence_labels))` -> lm + sop (lm alone
    without the binary head), keeping on-device sums of each part for the metrics callback."""

    def __init__(self, criterion: paddle.nn.Layer):
        super().__init__()
        self.criterion = criterion
        self._sums: Dict[str, Any] = {}
        self._counts: Dict[str, int] = {}

    def forward(self, outputs: Any, labels: Tuple[paddle.Tensor, paddle.Tensor]) -> paddle.Tensor:
        """Total loss for the Trainer; lm/sop parts are accumulated under 'train' (grad on) or 'eval' (no grad)."""
        if isinstance(outputs, (tuple, list)):
            prediction_scores, sop_scores = outputs[0], outputs[1] if len(outputs) > 1 else None
        else:
            prediction_scores, sop_scores = outputs, None
        masked_lm_labels, next_sentence_labels = labels
        total, lm_loss, sop_loss = self.criterion(
            prediction_scores, sop_scores, masked_lm_labels, next_sentence_labels
        )
        mode = "train" if paddle.is_grad_enabled() else "eval"
        # Kept on the device: a float() here would synchronise the GPU on every micro-batch.
        parts = paddle.stack([total.detach(), lm_loss.detach(), sop_loss.detach()]).astype("float32")
        self._add(mode, parts)
        return total

    def _add(self, mode: str, parts: paddle.Tensor) -> None:
        self._sums[mode] = parts if mode not in self._sums else self._sums[mode] + parts
        self._counts[mode] = self._counts.get(mode, 0) + 1

    def add_quality(self, sums: paddle.Tensor) -> None:
        """Accumulate one evaluation batch's quality sums (ernie1.pretrain.quality.quality_sums)."""
        self._add("quality", sums.astype("float32"))

    def pop_means(self, mode: str) -> Optional[List[float]]:
        """Mean [loss, lm_loss, sop_loss] (mode train/eval) or quality sums (mode quality) over the micro-batches since
        the last call for `mode`, then reset."""
        sums, count = self._sums.pop(mode, None), self._counts.pop(mode, 0)
        if sums is None or count == 0:
            return None
        return [float(value) / count for value in sums.numpy()]
