"""AdamW with the original's no-decay filter and optional global-norm clipping (REFERENCE §11.4)."""

from __future__ import annotations

from typing import List

import paddle


def decayed_parameter_names(model: paddle.nn.Layer) -> List[str]:
    """Paddle names of the parameters that get weight decay: structured name contains neither `bias` nor `norm`."""
    return [
        param.name
        for structured_name, param in model.named_parameters()
        if not any(word in structured_name for word in ("bias", "norm"))
    ]


def build_optimizer(
    optim, model: paddle.nn.Layer, lr_scheduler, multi_precision: bool = False
) -> paddle.optimizer.AdamW:
    """AdamW over `model` driven by `lr_scheduler`, configured from an `OptimConfig`."""
    decay_names = set(decayed_parameter_names(model))
    clip = paddle.nn.ClipGradByGlobalNorm(optim.grad_clip) if optim.grad_clip > 0 else None
    return paddle.optimizer.AdamW(
        learning_rate=lr_scheduler,
        beta1=optim.adam_beta1,
        beta2=optim.adam_beta2,
        epsilon=optim.adam_epsilon,
        parameters=model.parameters(),
        weight_decay=optim.weight_decay,
        grad_clip=clip,
        apply_decay_param_fun=lambda name: name in decay_names,
        multi_precision=multi_precision,
    )
