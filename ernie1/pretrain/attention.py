"""Selectable self-attention for paddlenlp's ERNIE encoder: `paddle` (nn.MultiHeadAttention) or `sdpa`.

`sdpa` computes attention with `paddle.nn.functional.scaled_dot_product_attention` (flash attention on GPU for
fp16/bf16, memory-efficient attention on GPU for fp32, the math fallback on CPU). It is swapped into an existing
model in place: every encoder layer's `self_attn` becomes an `SdpaMultiHeadAttention` that holds the very same
`q_proj`/`k_proj`/`v_proj`/`out_proj` Linear sublayers, so parameters (objects, static names, order) and
`state_dict` keys are those of paddlenlp's `ErnieModel`; checkpoints move freely between the two implementations,
the converter, fine-tuning and export.

Masks: any additive float mask broadcastable to [B, H, Sq, Sk] is accepted, as paddlenlp adds it to the scores:
the toolkit's [B,1,1,S] padding mask (0 real, -1e4 pad) and a packing [B,1,S,S] block-diagonal mask (see
`ernie1.data.packing`; `packed_attention_mask` / `packed_position_ids` are re-exported here). Bool/int masks
follow `nn.MultiHeadAttention` (1/True attends, 0/False becomes -1e9). On GPU a mask with a broadcast batch or
query dim is widened to [B,1,Sq,Sk] first, as the memory-efficient kernel requires (see `_prepare_mask`).

The encoder layers ask for attention weights (`output_attentions=True`) or pass an incremental `cache` only in
paddlenlp features this toolkit does not use; those calls fall back to the exact `nn.MultiHeadAttention` path.

Imports only paddle, paddlenlp, ernie1.common.errors and the numpy-only ernie1.data.packing.
"""

from __future__ import annotations

from typing import Iterator, Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.nn.layer.transformer import _convert_attention_mask
from paddlenlp.transformers import ErnieModel

from ernie1.common.errors import ToolkitError
from ernie1.data.packing import MASK_VALUE, packed_attention_mask, packed_position_ids  # noqa: F401 (re-exported)

PADDLE = "paddle"
SDPA = "sdpa"
AUTO = "auto"
ATTENTION_IMPLS = (PADDLE, SDPA)
ATTENTION_IMPL_CHOICES = (AUTO, PADDLE, SDPA)
FIELD = "attention_impl"
# What `auto` picks on CPU: both run the same kernels there (sdpa's CPU backend is the math path), and
# benchmarks/bench_attention.py measured sdpa equal to paddle within noise (see the report), so CPU follows GPU.
CPU_DEFAULT = SDPA
# CUDA GPUs: flash (fp16/bf16) / memory-efficient (fp32) kernels.
GPU_DEFAULT = SDPA
# xpu/npu/mlu: SDPA dispatches differently there (xpu always picks its flash kernel) and nothing was measured.
OTHER_DEVICE_DEFAULT = PADDLE

_MHA_ATTRIBUTES = ("embed_dim", "kdim", "vdim", "num_heads", "head_dim", "dropout", "need_weights")
_MHA_SUBLAYERS = ("q_proj", "k_proj", "v_proj", "out_proj")


# --------------------------------------------------------------------------------------------------------------------
# Choosing the implementation


def validate_attention_impl(value: Optional[str]) -> str:
    """`auto`, `paddle` or `sdpa` (None and '' mean auto); anything else is a one-line ToolkitError."""
    if value is None:
        return AUTO
    if not isinstance(value, str):
        raise ToolkitError(f"{FIELD}: expected one of {', '.join(ATTENTION_IMPL_CHOICES)}, got {value!r}")
    normalized = value.strip().lower() or AUTO
    if normalized not in ATTENTION_IMPL_CHOICES:
        raise ToolkitError(f"{FIELD}: unknown value {value!r}; expected one of {', '.join(ATTENTION_IMPL_CHOICES)}")
    return normalized


def resolve_attention_impl(requested: Optional[str], device: Optional[str] = None, *, for_export: bool = False) -> str:
    """The implementation to build with: `requested` if explicit, else the fastest on `device` (cpu, gpu, gpu:0...).

    `for_export=True` resolves auto to `paddle`: a program traced with sdpa on GPU holds flash/memory-efficient
    attention ops that only have GPU kernels, while the plain pattern runs in any predictor (and is what Paddle
    Inference's fusion passes look for). An explicit `sdpa` is kept (a GPU-only export, by request).
    """
    choice = validate_attention_impl(requested)
    if choice != AUTO:
        return choice
    if for_export:
        return PADDLE
    if device is None:
        device = paddle.get_device()
    kind = str(device).split(":", 1)[0].strip().lower()
    if kind in ("", "cpu"):
        return CPU_DEFAULT
    return GPU_DEFAULT if kind in ("gpu", "cuda") else OTHER_DEVICE_DEFAULT


# --------------------------------------------------------------------------------------------------------------------
# The layer


def _on_cpu(tensor) -> bool:
    """Whether `tensor` runs on the CPU (dygraph: its place; static/to_static: the place the program is built for)."""
    if paddle.in_dynamic_mode():
        return tensor.place.is_cpu_place()
    return paddle.framework._current_expected_place_().is_cpu_place()


def _prepare_mask(attn_mask, query):
    """`attn_mask` as an additive mask of `query`'s dtype that every SDPA backend accepts.

    Bool/int masks follow nn.MultiHeadAttention (`(x - 1) * 1e9`; SDPA alone would use -inf for bool). On the
    CPU (math backend) broadcasting does the rest. On GPU the kernels are stricter: flash attention wants the mask's
    batch dim equal to B, and memory-efficient attention (fp32, or fp16 where flash is unavailable) wants its
    query dim equal to Sq ("The 2nd last dim of attn_bias should be equal to the sequence length of query"), so a
    [B,1,1,S] padding mask (or a [1,...] one) is broadcast to [B,1,Sq,Sk] there (B*Sq*Sk elements per layer).
    """
    if attn_mask is None:
        return None
    mask = _convert_attention_mask(attn_mask, query.dtype)
    if _on_cpu(query) or mask.ndim != 4:
        return mask
    if mask.shape[0] == 1 or mask.shape[2] == 1:
        # [B, 1, Sq, 1] zeros built from query's (possibly dynamic) shape; adding broadcasts B and Sq.
        rows = paddle.zeros_like(query[:, :, :1, :1]).transpose([0, 2, 1, 3])
        mask = mask + rows
    return mask


class SdpaMultiHeadAttention(nn.MultiHeadAttention):
    """`nn.MultiHeadAttention` whose forward calls `F.scaled_dot_product_attention`.

    Same constructor, sublayers, parameters and state_dict keys as the parent; `from_layer` adopts an existing
    instance's sublayers without creating parameters. `need_weights=True` or a `cache` use the parent's forward.
    """

    @classmethod
    def from_layer(cls, source: nn.MultiHeadAttention) -> "SdpaMultiHeadAttention":
        return _adopt(cls, source)

    def forward(self, query, key=None, value=None, attn_mask=None, cache=None):
        if self.need_weights or cache is not None:
            return super().forward(query, key, value, attn_mask, cache)
        key = query if key is None else key
        value = query if value is None else value
        # [B, S, H, D]: the layout SDPA takes (no transposes here; the math backend makes its own).
        q = paddle.reshape(self.q_proj(query), [0, 0, self.num_heads, self.head_dim])
        k = paddle.reshape(self.k_proj(key), [0, 0, self.num_heads, self.head_dim])
        v = paddle.reshape(self.v_proj(value), [0, 0, self.num_heads, self.head_dim])
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=_prepare_mask(attn_mask, q),
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=False,
            training=self.training,
        )
        out = paddle.reshape(out, [0, 0, self.num_heads * self.head_dim])
        return self.out_proj(out)


def _adopt(cls, source: nn.MultiHeadAttention) -> nn.MultiHeadAttention:
    """A `cls` instance sharing `source`'s Linear sublayers (no new parameters; names, order, keys unchanged)."""
    layer = cls.__new__(cls)
    nn.Layer.__init__(layer, dtype=getattr(source, "_dtype", None) or paddle.get_default_dtype())
    for name in _MHA_ATTRIBUTES:
        setattr(layer, name, getattr(source, name))
    for name in _MHA_SUBLAYERS:
        setattr(layer, name, getattr(source, name))
    layer.training = source.training
    return layer


# --------------------------------------------------------------------------------------------------------------------
# Swapping it into a model


def find_ernie_model(model: nn.Layer) -> ErnieModel:
    """The ErnieModel inside `model`: the model itself, its `.ernie`, or the same under a DataParallel `_layers`."""
    candidates = [model, getattr(model, "_layers", None)]
    for candidate in candidates:
        if isinstance(candidate, ErnieModel):
            return candidate
        inner = getattr(candidate, "ernie", None) if isinstance(candidate, nn.Layer) else None
        if isinstance(inner, ErnieModel):
            return inner
    raise TypeError(f"set_attention_impl: {type(model).__name__} is not an ErnieModel and has no .ernie ErnieModel")


def _encoder_layers(model: nn.Layer) -> Iterator[nn.Layer]:
    for layer in find_ernie_model(model).encoder.layers:
        if not isinstance(layer.self_attn, nn.MultiHeadAttention):
            raise TypeError(f"set_attention_impl: unexpected self_attn {type(layer.self_attn).__name__}")
        yield layer


def set_attention_impl(model: nn.Layer, impl: Optional[str]) -> None:
    """Switch every encoder layer of `model` to `impl` (paddle, sdpa, or auto for the current device), in place.

    Works in dygraph and while building a static program (before or after the weights are loaded, before the
    optimizer or after it: parameters are the same objects). Switching back and forth is lossless.
    """
    resolved = resolve_attention_impl(impl)
    target = SdpaMultiHeadAttention if resolved == SDPA else nn.MultiHeadAttention
    for layer in _encoder_layers(model):
        if type(layer.self_attn) is not target:
            layer.self_attn = _adopt(target, layer.self_attn)


def get_attention_impl(model: nn.Layer) -> str:
    """`paddle`, `sdpa`, or `mixed` when the layers differ."""
    kinds = {
        SDPA if isinstance(layer.self_attn, SdpaMultiHeadAttention) else PADDLE for layer in _encoder_layers(model)
    }
    return kinds.pop() if len(kinds) == 1 else "mixed"
