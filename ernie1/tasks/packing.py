"""`--packing`: the examples of one Trainer batch packed into as few rows of `max_seq_length` tokens as first-fit
needs, and models that read the packed rows back out per example, so that the Trainer, the loss and the metrics
see exactly what an unpacked batch gives them.

Packing happens inside each batch the Trainer's sampler draws: the same examples per step as unpacked (same
shuffling, steps per epoch, lr schedule, loss = mean over the batch's examples), only fewer and fuller rows. Rows
are as wide as the fullest one; each example keeps its own [CLS] ... [SEP], positions restart at 0 per example and
the block-diagonal mask keeps examples from seeing each other (`ernie1.data.packing`).

The models subclass paddlenlp's classes without new parameters: same sublayers, names and state_dict keys, and they
save under paddlenlp's class name, so checkpoints, `from_pretrained`, export and deploy are unchanged. Without the
packing inputs (export traces `input_ids`, `token_type_ids` only) their forward is paddlenlp's own.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import paddle
from paddlenlp.transformers import ErnieForSequenceClassification, ErnieForTokenClassification

from ernie1.data.packing import pack_lengths, packed_encoder_inputs
from ernie1.pretrain.packing import encode_rows, pool_each
from ernie1.tasks.heads import IGNORE_INDEX, labelled_mean_cross_entropy

# Per-token labels are padded as paddlenlp's DataCollatorForTokenClassification pads them (the loss skips them).
LABEL_PAD = IGNORE_INDEX
# Readouts: one output per example (its first token, [CLS]) or one per token of every example.
FIRST_TOKEN = "cls_positions"
EVERY_TOKEN = "token_index"
TOKEN_KEYS = ("input_ids", "token_type_ids")


class PackingCollator:
    """Packs one batch of features (`input_ids`, `token_type_ids`, optional `labels`) into rows of `capacity`.

    The batch holds, first, the readout (`cls_positions` [n, 2] or `token_index` [n, longest]) and `labels` (per
    example, in the batch's order), then the packed `input_ids`, `token_type_ids`, `position_ids` [rows, width] and
    `attention_mask` [rows, 1, width, width]. Per-example keys come first because the Trainer's evaluation loop
    counts a batch's examples by the first tensor's leading dim.
    """

    def __init__(self, capacity: int, pad_token_id: int, readout: str):
        if readout not in (FIRST_TOKEN, EVERY_TOKEN):
            raise ValueError(f"PackingCollator: readout must be {FIRST_TOKEN!r} or {EVERY_TOKEN!r}, got {readout!r}")
        self.capacity = capacity
        self.pad_token_id = pad_token_id
        self.readout = readout

    def __call__(self, features: Sequence[Dict[str, Any]]) -> Dict[str, paddle.Tensor]:
        return {key: paddle.to_tensor(value) for key, value in self.pack(features).items()}

    def pack(self, features: Sequence[Dict[str, Any]]) -> Dict[str, np.ndarray]:
        """The packed batch as numpy arrays (see the class docstring)."""
        layout = pack_lengths([len(feature["input_ids"]) for feature in features], self.capacity)
        batch: Dict[str, np.ndarray] = {}
        batch[self.readout] = layout.starts if self.readout == FIRST_TOKEN else layout.token_index()
        labels = _labels(features, int(layout.lengths.max()))
        if labels is not None:
            batch["labels"] = labels
        tokens = {key: [feature[key] for feature in features] for key in TOKEN_KEYS}
        batch.update(packed_encoder_inputs(layout, tokens, {"input_ids": self.pad_token_id}))
        return batch


def _labels(features: Sequence[Dict[str, Any]], longest: int) -> Optional[np.ndarray]:
    """[n] class ids, or [n, longest] per-token ids padded with LABEL_PAD; None for unlabelled features."""
    if not features or "labels" not in features[0]:
        return None
    values = [feature["labels"] for feature in features]
    if np.ndim(values[0]) == 0:
        return np.asarray(values, dtype="int64")
    out = np.full((len(values), longest), LABEL_PAD, dtype="int64")
    for row, tags in enumerate(values):
        out[row, : len(tags)] = tags
    return out


def _save_as(parent: type):
    """Make a subclass record `parent`'s name in config.json `architectures` (AutoModel reloads it as `parent`)."""

    def decorate(cls: type) -> type:
        cls.__name__ = parent.__name__
        return cls

    return decorate


class _ReadsPackedRows:
    """The forward both packed models share: paddlenlp's own without a readout, else the packed pass per example."""

    def _forward(self, readout, input_ids, token_type_ids, position_ids, attention_mask, labels, kwargs):
        if readout is None:
            return super().forward(input_ids, token_type_ids, position_ids, attention_mask, labels=labels, **kwargs)
        logits = self._read_out(readout, input_ids, token_type_ids, position_ids, attention_mask)
        return _with_loss(logits, labels, self.num_labels)


@_save_as(ErnieForSequenceClassification)
class PackedErnieForSequenceClassification(_ReadsPackedRows, ErnieForSequenceClassification):
    """ErnieForSequenceClassification that also takes packed rows with `cls_positions` [n, 2] (row, column).

    Each example's [CLS] state goes through the same pooler (dense + tanh), dropout and classifier as unpacked;
    logits are [n, num_labels] in the examples' order.
    """

    def forward(
        self,
        input_ids=None,
        token_type_ids=None,
        position_ids=None,
        attention_mask=None,
        cls_positions=None,
        labels=None,
        **kwargs,
    ):
        return self._forward(cls_positions, input_ids, token_type_ids, position_ids, attention_mask, labels, kwargs)

    def _read_out(self, cls_positions, input_ids, token_type_ids, position_ids, attention_mask):
        sequence_output = encode_rows(self.ernie, input_ids, token_type_ids, position_ids, attention_mask)
        pooled = pool_each(self.ernie, paddle.gather_nd(sequence_output, cls_positions))
        return self.classifier(self.dropout(pooled))


@_save_as(ErnieForTokenClassification)
class PackedErnieForTokenClassification(_ReadsPackedRows, ErnieForTokenClassification):
    """ErnieForTokenClassification that also takes packed rows with `token_index` [n, longest] (flat row*width+col).

    Token logits are gathered back to [n, longest, num_labels], the padded-to-longest layout of an unpacked batch
    (positions past an example's end hold its first token's logits; their labels are LABEL_PAD).
    """

    def forward(
        self,
        input_ids=None,
        token_type_ids=None,
        position_ids=None,
        attention_mask=None,
        token_index=None,
        labels=None,
        **kwargs,
    ):
        return self._forward(token_index, input_ids, token_type_ids, position_ids, attention_mask, labels, kwargs)

    def _read_out(self, token_index, input_ids, token_type_ids, position_ids, attention_mask):
        packed = ErnieForTokenClassification.forward(
            self, input_ids, token_type_ids, position_ids, attention_mask, return_dict=False
        )  # [rows, width, num_labels]
        flat = packed.reshape([-1, self.num_labels])
        return paddle.gather(flat, token_index.reshape([-1])).reshape(token_index.shape + [self.num_labels])


def _with_loss(logits: paddle.Tensor, labels: Optional[paddle.Tensor], num_labels: int) -> Any:
    """`logits`, or `(loss, logits)` with the cross-entropy averaged over the labelled positions when labelled."""
    if labels is None:
        return logits
    loss = labelled_mean_cross_entropy(logits.reshape((-1, num_labels)), labels.reshape((-1,)))
    return loss, logits
