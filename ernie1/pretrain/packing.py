"""`--pack_samples`: the pretraining model reading packed rows (ernie1/data/collate.py) per sample.

The encoder already keeps packed samples apart (block-diagonal mask, positions restarting at 0) and the MLM head
gathers the re-based `masked_positions` from the flat [rows * width, hidden] output, as it does unpacked. Only the
SOP head needs more: paddlenlp pools position 0 of each row, while packed rows hold several [CLS] tokens, so the
packed forward pools the state at each sample's `sample_starts` instead. The subclass adds no parameters: same
sublayers, names and state_dict keys as `ErnieForPretraining`, so checkpoints move between packed and unpacked runs.
"""

from __future__ import annotations

import paddle
from paddlenlp.transformers import ErnieForPretraining


def encode_rows(ernie, input_ids, token_type_ids, position_ids, attention_mask) -> paddle.Tensor:
    """The encoder's states [rows, width, hidden] of packed rows (their mask and positions keep samples apart)."""
    return ernie(
        input_ids,
        token_type_ids=token_type_ids,
        position_ids=position_ids,
        attention_mask=attention_mask,
        return_dict=False,
    )[0]


def pool_each(ernie, cls_states: paddle.Tensor) -> paddle.Tensor:
    """ERNIE's pooler (dense + tanh) on each of `cls_states` [n, hidden], as it pools position 0 of an unpacked row."""
    return ernie.pooler(cls_states.unsqueeze(1))


class PackedErnieForPretraining(ErnieForPretraining):
    """ErnieForPretraining that also takes packed rows with `sample_starts` [n] (flat row * width + column).

    Returns (prediction_scores [M, vocab], seq_relationship_score [n, 2]) with the SOP scores in the samples' order;
    without `sample_starts` it is paddlenlp's forward.
    """

    def forward(
        self,
        input_ids=None,
        token_type_ids=None,
        position_ids=None,
        attention_mask=None,
        masked_positions=None,
        sample_starts=None,
        **kwargs,
    ):
        if sample_starts is None:
            return super().forward(input_ids, token_type_ids, position_ids, attention_mask, masked_positions, **kwargs)
        sequence_output = encode_rows(self.ernie, input_ids, token_type_ids, position_ids, attention_mask)
        cls_states = paddle.gather(sequence_output.reshape([-1, sequence_output.shape[-1]]), sample_starts)
        return self.cls(sequence_output, pool_each(self.ernie, cls_states), masked_positions)
