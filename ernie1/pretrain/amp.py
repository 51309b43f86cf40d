"""Mixed precision, decided once: `--use_amp`, `--amp_dtype float16|bfloat16`, `--fp16_opt_level O1|O2`.

`amp_plan` is the pure decision (what each engine builds: autocast dtype and level, fp32 master weights, whether a
loss scaler exists); `resolve_amp_plan` adds what only the running process knows (the device, bf16 support) and
says so when AMP cannot take effect. Loss scaling exists for float16 only: bfloat16 has float32's exponent range,
so its gradients do not underflow (Paddle itself turns dynamic scaling off for bf16). O2 keeps fp32 master weights
in the optimizer (multi_precision) in every engine.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ContextManager

import paddle

from ernie1.common.errors import FieldError

logger = logging.getLogger("ernie1")

AMP_DTYPES = ("float16", "bfloat16")
# REFERENCE §11.5: run these in half precision under O1, keep the fused softmax-CE in fp32 (dygraph and static).
AMP_WHITE_LIST = ["softmax", "layer_norm", "gelu"]
AMP_BLACK_LIST = ["c_softmax_with_cross_entropy"]


@dataclass(frozen=True)
class AmpPlan:
    """How a step runs: fp32 (enabled False), or autocast to `dtype` at `level`."""

    enabled: bool = False
    dtype: str = "float32"
    level: str = "O0"
    # A dynamic loss scaler (GradScaler / the static program's scaling ops): float16 only.
    loss_scaling: bool = False
    # O2 casts the parameters to `dtype`; the optimizer then keeps fp32 master copies and updates those.
    master_weights: bool = False

    def describe(self) -> str:
        """One phrase for the start-of-run log."""
        if not self.enabled:
            return "fp32"
        scaling = "dynamic loss scaling" if self.loss_scaling else "no loss scaling"
        master = ", fp32 master weights" if self.master_weights else ""
        return f"{self.dtype} {self.level} ({scaling}{master})"


FP32 = AmpPlan()


def amp_plan(use_amp: bool, amp_dtype: str, level: str, device: str) -> AmpPlan:
    """The plan for these settings on `device` (cpu: fp32, Paddle's AMP is GPU/XPU only)."""
    if not use_amp or str(device).split(":")[0] == "cpu":
        return FP32
    return AmpPlan(
        enabled=True,
        dtype=amp_dtype,
        level=level,
        loss_scaling=amp_dtype == "float16",
        master_weights=level == "O2",
    )


def _bfloat16_supported(device: str) -> bool:
    if str(device).split(":")[0] != "gpu":
        return True
    try:
        return bool(paddle.amp.is_bfloat16_supported())
    except Exception:  # noqa: BLE001 - older builds lack the query; let the kernels decide
        return True


def resolve_amp_plan(runtime, device: str) -> AmpPlan:
    """The plan of a RuntimeConfig on this process's device; a note on CPU, an error for bf16 without support."""
    plan = amp_plan(runtime.use_amp, runtime.amp_dtype, runtime.fp16_opt_level, device)
    if runtime.use_amp and not plan.enabled:
        logger.warning("--use_amp true has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32")
    if plan.enabled and plan.dtype == "bfloat16" and not _bfloat16_supported(device):
        raise FieldError(
            "amp_dtype",
            "{amp_dtype} bfloat16: this GPU has no bfloat16 support (compute capability below 8.0); use float16",
        )
    return plan


def autocast(plan: AmpPlan) -> ContextManager[None]:
    """paddle.amp.auto_cast for the plan (dygraph, and static PIR programs while they are built); a no-op for fp32."""
    if not plan.enabled:
        return contextlib.nullcontext()
    return paddle.amp.auto_cast(
        enable=True,
        custom_white_list=AMP_WHITE_LIST,
        custom_black_list=AMP_BLACK_LIST,
        level=plan.level,
        dtype=plan.dtype,
    )
