"""The dygraph step engine: AdamW over the model, gradient accumulation, AMP and data parallel (REFERENCE §11-12)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import paddle

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.common.formats import WEIGHTS_FILE
from ernie1.pretrain.amp import AmpPlan, autocast, resolve_amp_plan
from ernie1.pretrain.checkpoint import RngState, part_file, read_parts, save_checkpoint
from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.mlm_prior import set_mlm_bias
from ernie1.pretrain.model import (
    BUILTIN_CONFIGS,
    PretrainingCriterion,
    build_model,
    forward_pretraining,
    forward_with_states,
    model_config_dict,
    resolved_attention_impl,
)
from ernie1.pretrain.optim import build_optimizer
from ernie1.pretrain.quality import QUALITY_SUM_NAMES, quality_sums
from ernie1.pretrain.runtime import Placement, mean_across_ranks, seed_for_training


class Fp32Model:
    """Saves fp16 (AMP O2) weights as fp32, and loads fp32 weights back into the model's own dtypes."""

    def __init__(self, model: paddle.nn.Layer):
        self.model = model

    def state_dict(self) -> Dict[str, Any]:
        return {
            key: value.astype("float32") if value.dtype in (paddle.float16, paddle.bfloat16) else value
            for key, value in self.model.state_dict().items()
        }

    def set_state_dict(self, state: Dict[str, Any]) -> None:
        own = self.model.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ToolkitError(f"checkpoint lacks {len(missing)} model parameter(s), e.g. {missing[0]}")
        converted = {}
        for key, param in own.items():
            value = state[key] if isinstance(state[key], paddle.Tensor) else paddle.to_tensor(state[key])
            converted[key] = value if value.dtype == param.dtype else value.astype(param.dtype)
        self.model.set_state_dict(converted)


def apply_amp(plan: AmpPlan, model: paddle.nn.Layer, optimizer: Any, scale_loss: float):
    """(model, optimizer, scaler or None) for the plan: O2 casts the model and keeps fp32 master weights; a
    GradScaler only for float16 (bfloat16 needs no loss scaling)."""
    if plan.enabled and plan.level == "O2":
        model, optimizer = paddle.amp.decorate(
            models=model, optimizers=optimizer, level="O2", dtype=plan.dtype, master_weight=plan.master_weights
        )
    scaler = paddle.amp.GradScaler(init_loss_scaling=scale_loss) if plan.loss_scaling else None
    return model, optimizer, scaler


class DygraphEngine:
    """Model, criterion, optimizer, scheduler and scaler; AMP decoration and the data-parallel wrapper."""

    weights_file = WEIGHTS_FILE
    foreign_message = (
        "not a dygraph checkpoint (written by run_pretrain_static.py?); resume it with the same script or use a new "
        "{output_dir}"
    )
    part_names = ("model", "optimizer", "scaler", "rng", "training_state")

    def __init__(self, config, placement: Placement, tokenizer: Any, ernie_config: Any):
        self.config, self.placement = config, placement
        self.tokenizer, self.ernie_config = tokenizer, ernie_config
        model = build_model(config, ernie_config, placement.device)
        # build_model loads the weights of a checkpoint directory (always, as the original).
        self.warm_start = config.model.model_name_or_path not in BUILTIN_CONFIGS
        self.criterion = PretrainingCriterion(config.model.binary_head)
        self.lr_scheduler = build_lr_scheduler(config.optim)
        self.amp = resolve_amp_plan(config.runtime, placement.device)
        optimizer = build_optimizer(config.optim, model, self.lr_scheduler, multi_precision=self.amp.enabled)
        model, optimizer, self.scaler = apply_amp(self.amp, model, optimizer, config.runtime.scale_loss)
        self.model, self.optimizer = model, optimizer
        # How steps run, for the start-of-run line and record.
        self.run_info = {
            "attention_impl": resolved_attention_impl(config, placement.device),
            "precision": self.amp.describe(),
        }
        if config.runtime.pack_samples:
            self.run_info["pack_samples"] = "true"
        # The layer the step calls: `model`, or its DataParallel wrapper.
        self.network = model
        if placement.world_size > 1:
            from paddle.distributed import fleet

            # Without the SOP head the pooler gets no gradient; DataParallel must be told.
            self.network = paddle.DataParallel(model, find_unused_parameters=not config.model.binary_head)
            if self.scaler is not None:
                self.scaler = fleet.distributed_scaler(self.scaler)
        seed_for_training(config.runtime, placement)

    def state_parts(self, state) -> Dict[str, Any]:
        """Named checkpoint parts (the same names for the static engine where they exist)."""
        return {
            "model": Fp32Model(self.model),
            "optimizer": self.optimizer,
            "scaler": self.scaler,
            "rng": RngState(),
            "training_state": state,
        }

    def read_checkpoint(self, directory: Path) -> Dict[str, Any]:
        """Every part file of `directory` read into memory; CheckpointUnreadable for a truncated one."""
        names = [name for name in self.part_names if name != "scaler" or self.scaler is not None]
        return {"directory": directory, "states": read_parts(str(directory), names)}

    def start(self, state, checkpoint: Optional[Dict[str, Any]]) -> None:
        """Apply a checkpoint read by read_checkpoint (RNG states only on rank 0, the one that saved them)."""
        if checkpoint is None:
            return
        parts = self.state_parts(state)
        for name, value in checkpoint["states"].items():
            if name == "rng":
                state.pending_rng = value if self.placement.is_main else None
            elif name == "scaler":
                parts[name].load_state_dict(value)
            else:
                try:
                    parts[name].set_state_dict(value)
                except ToolkitError as error:
                    raise FieldError("output_dir", f"{checkpoint['directory'] / part_file(name)}: {error}") from None
        self.lr_scheduler.last_epoch = state.global_step
        self.lr_scheduler.last_lr = self.lr_scheduler.get_lr()

    def set_mlm_bias(self, prior) -> None:
        """Start the MLM decoder bias at `prior` (before the first step: AMP master weights copy it then)."""
        set_mlm_bias(self.model, prior)

    def close(self) -> None:
        """Nothing to release in dygraph."""

    def set_training(self, training: bool) -> None:
        self.network.train() if training else self.network.eval()

    def learning_rate(self) -> float:
        return float(self.optimizer.get_lr())

    def _losses(self, batch: Dict[str, paddle.Tensor]):
        with autocast(self.amp):
            scores, sop_scores = forward_pretraining(self.network, batch)
            return self.criterion(scores, sop_scores, batch["masked_lm_labels"], batch["next_sentence_labels"])

    def _no_sync(self, skip: bool):
        if skip and isinstance(self.network, paddle.DataParallel):
            return self.network.no_sync()
        return contextlib.nullcontext()

    def _allreduce_gradients(self) -> None:
        """Average gradients over ranks by hand (recompute's re-run forward does not mix with DataParallel's hooks)."""
        world_size = paddle.distributed.get_world_size()
        with paddle.no_grad():
            for param in self.model.parameters():
                if param.grad is not None:
                    paddle.distributed.all_reduce(param.grad)
                    param.grad.scale_(1.0 / world_size)

    def step(self, micro_batches: Sequence[Dict[str, Any]]) -> paddle.Tensor:
        """One global step over `accumulate_steps` micro-batches; this rank's summed [loss, lm, sop] (on device)."""
        accumulate_steps = self.config.schedule.accumulate_steps
        manual_allreduce = self.config.model.use_recompute and isinstance(self.network, paddle.DataParallel)
        sums = None
        for index, batch in enumerate(micro_batches):
            # Gradients are all-reduced once per global step, on the last micro-batch (by hand under recompute, §11.7).
            with self._no_sync(skip=manual_allreduce or index < accumulate_steps - 1):
                total, lm_loss, sop_loss = self._losses(batch)
                scaled = total / accumulate_steps
                if self.scaler is not None:
                    scaled = self.scaler.scale(scaled)
                scaled.backward()
            losses = paddle.stack([total.detach(), lm_loss.detach(), sop_loss.detach()]).astype("float32")
            sums = losses if sums is None else sums + losses
        if manual_allreduce:
            self._allreduce_gradients()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad()
        self.lr_scheduler.step()
        return sums

    def evaluate_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        """Losses and quality sums of one micro-batch (one forward, no dropout, no update)."""
        with paddle.no_grad(), autocast(self.amp):
            scores, sop_scores, states = forward_with_states(self.model, batch)
            labels, sop_labels = batch["masked_lm_labels"], batch["next_sentence_labels"]
            losses = self.criterion(scores, sop_scores, labels, sop_labels)
            sums = quality_sums(scores, sop_scores, states, labels, sop_labels, batch["attention_mask"])
        values = paddle.concat([paddle.stack([loss.astype("float32") for loss in losses]), sums]).numpy()
        return dict(zip(LOSS_NAMES + QUALITY_SUM_NAMES, (float(value) for value in values)))

    def mean_across_ranks(self, values: List[float]) -> List[float]:
        return mean_across_ranks(values, self.placement.world_size)

    def amp_state(self) -> Optional[Dict[str, float]]:
        if self.scaler is None:
            return None
        # GradScaler keeps these private; the original logged them too (REFERENCE §11.8).
        return {
            name: float(getattr(self.scaler, attribute))
            for name, attribute in (
                ("loss_scaling", "_scale"),
                ("incr_count", "_incr_count"),
                ("decr_count", "_decr_count"),
            )
            if getattr(self.scaler, attribute, None) is not None
        }

    def save(self, directory: str, meta: Dict[str, Any], state, keep_existing: bool) -> None:
        save_checkpoint(
            directory,
            self.state_parts(state),
            meta,
            tokenizer=self.tokenizer,
            model_config=model_config_dict(self.ernie_config),
            keep_existing=keep_existing,
        )
