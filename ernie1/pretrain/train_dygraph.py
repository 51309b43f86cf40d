"""The dygraph pretraining run: build, resume, loop (accumulation, AMP, DP), evaluate, save (REFERENCE §11-12)."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import paddle

from ernie1.common.errors import ToolkitError
from ernie1.pretrain import cadence
from ernie1.pretrain.checkpoint import (
    RngState,
    check_resume_compatible,
    find_resume_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from ernie1.pretrain.data import (
    EvalStream,
    PretrainingData,
    load_pretraining_tokenizer,
)
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.model import (
    PretrainingCriterion,
    forward_pretraining,
    model_config_dict,
)
from ernie1.pretrain.optim import build_optimizer
from ernie1.pretrain.runtime import Runtime, seed_for_training
from ernie1.pretrain.training import (
    TrainingState,
    TrainResult,
    amp_enabled,
    build_model,
    build_pretraining_data,
    checkpoint_meta,
    final_test_stream,
    open_run_streams,
    prepare_output_dir,
    take_micro_batches,
)

logger = logging.getLogger("ernie1")

LOSS_NAMES = ("loss", "lm_loss", "sop_loss")
# REFERENCE §11.5: run these in fp16 under O1, keep the fused softmax-CE in fp32.
AMP_WHITE_LIST = ["softmax", "layer_norm", "gelu"]
AMP_BLACK_LIST = ["c_softmax_with_cross_entropy"]


@dataclass
class TrainingParts:
    """Everything the loop touches, built once."""

    model: paddle.nn.Layer
    # The model the loop calls: `model`, or its DataParallel wrapper.
    engine: paddle.nn.Layer
    criterion: PretrainingCriterion
    optimizer: paddle.optimizer.Optimizer
    lr_scheduler: Any
    scaler: Optional[paddle.amp.GradScaler]
    tokenizer: Any
    ernie_config: Any
    use_amp: bool


def build_training_parts(config, runtime: Runtime, tokenizer) -> TrainingParts:
    """Model, criterion, optimizer, scheduler, scaler, with AMP decoration and the data-parallel wrapper."""
    model, criterion, ernie_config = build_model(config, tokenizer)
    lr_scheduler = build_lr_scheduler(config.optim)
    use_amp = amp_enabled(config, runtime)
    optimizer = build_optimizer(config.optim, model, lr_scheduler, multi_precision=use_amp)
    scaler = None
    if use_amp:
        scaler = paddle.amp.GradScaler(init_loss_scaling=config.runtime.scale_loss)
        if config.runtime.fp16_opt_level == "O2":
            model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2", master_weight=True)
    engine = model
    if runtime.world_size > 1:
        from paddle.distributed import fleet

        # Without the SOP head the pooler gets no gradient; DataParallel must be told.
        engine = paddle.DataParallel(model, find_unused_parameters=not config.model.binary_head)
        if scaler is not None:
            scaler = fleet.distributed_scaler(scaler)
    return TrainingParts(model, engine, criterion, optimizer, lr_scheduler, scaler, tokenizer, ernie_config, use_amp)


def checkpoint_parts(parts: TrainingParts, state: TrainingState) -> Dict[str, Any]:
    """Named parts the checkpointer saves and loads (same names for the static script)."""
    return {
        "model": _Fp32Model(parts.model),
        "optimizer": parts.optimizer,
        "scaler": parts.scaler,
        "rng": RngState(),
        "training_state": state,
    }


class _Fp32Model:
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


def _check_same_checkpoint_everywhere(directory: Optional[Path], runtime: Runtime) -> None:
    """Every rank must resume from the same step: on several nodes output_dir has to be a shared filesystem."""
    if runtime.world_size == 1:
        return
    from ernie1.pretrain.checkpoint import read_meta

    step = int(read_meta(directory)["global_step"]) if directory is not None else -1
    extremes = paddle.to_tensor([step, -step], dtype="int64")
    paddle.distributed.all_reduce(extremes, op=paddle.distributed.ReduceOp.MAX)
    highest, lowest = int(extremes[0]), -int(extremes[1])
    if highest != lowest:
        raise ToolkitError(
            f"--output_dir: the ranks found different checkpoints (global steps {lowest} to {highest}, -1 = none); "
            "on several nodes put output_dir on a filesystem they all share"
        )


def restore_if_resuming(config, runtime: Runtime, parts: TrainingParts, state: TrainingState) -> Optional[str]:
    """Continue from `output_dir/model_last` (or its backup) when present; refuse incompatible resumes."""
    directory = find_resume_checkpoint(config.runtime.output_dir)
    _check_same_checkpoint_everywhere(directory, runtime)
    if directory is None:
        return None
    from ernie1.pretrain.checkpoint import read_meta

    meta = read_meta(directory)
    check_resume_compatible(meta, checkpoint_meta(config, state, parts.ernie_config), str(directory))
    resumable = checkpoint_parts(parts, state)
    rng_state: Dict[str, Any] = {}
    # RNG states are per rank; only rank 0 saved them, so other ranks keep their fresh seed + rank streams.
    resumable["rng"] = rng_state if runtime.is_main else None
    load_checkpoint(str(directory), resumable)
    state.pending_rng = rng_state or None
    if state.global_step != int(meta["global_step"]):
        state.global_step = int(meta["global_step"])
        state.consumed_samples = int(meta["consumed_samples"])
    parts.lr_scheduler.last_epoch = state.global_step
    parts.lr_scheduler.last_lr = parts.lr_scheduler.get_lr()
    logger.info(f"resumed from {directory} at global step {state.global_step}")
    return str(directory)


def _no_sync(engine: paddle.nn.Layer, skip: bool):
    return engine.no_sync() if skip and isinstance(engine, paddle.DataParallel) else contextlib.nullcontext()


def _autocast(parts: TrainingParts, config):
    if not parts.use_amp:
        return contextlib.nullcontext()
    return paddle.amp.auto_cast(
        enable=True,
        custom_white_list=AMP_WHITE_LIST,
        custom_black_list=AMP_BLACK_LIST,
        level=config.runtime.fp16_opt_level,
    )


def _compute_losses(parts: TrainingParts, config, batch: Dict[str, paddle.Tensor]):
    with _autocast(parts, config):
        scores, sop_scores = forward_pretraining(parts.engine, batch)
        return parts.criterion(scores, sop_scores, batch["masked_lm_labels"], batch["next_sentence_labels"])


def _mean_across_ranks(values: List[float], runtime: Runtime) -> List[float]:
    if runtime.world_size == 1:
        return values
    tensor = paddle.to_tensor(values, dtype="float64")
    paddle.distributed.all_reduce(tensor)
    return [float(value) / runtime.world_size for value in tensor.numpy()]


def _allreduce_gradients(model: paddle.nn.Layer) -> None:
    """Average gradients over ranks by hand (recompute's re-run forward does not mix with DataParallel's hooks)."""
    world_size = paddle.distributed.get_world_size()
    with paddle.no_grad():
        for param in model.parameters():
            if param.grad is not None:
                paddle.distributed.all_reduce(param.grad)
                param.grad.scale_(1.0 / world_size)


def train_step(parts: TrainingParts, config, micro_batches) -> paddle.Tensor:
    """One global step over `accumulate_steps` micro-batches; returns this rank's summed [loss, lm, sop] (on device)."""
    accumulate_steps = config.schedule.accumulate_steps
    manual_allreduce = config.model.use_recompute and isinstance(parts.engine, paddle.DataParallel)
    sums = None
    for index, batch in enumerate(micro_batches):
        # Gradients are all-reduced once per global step, on the last micro-batch (by hand under recompute, §11.7).
        with _no_sync(parts.engine, skip=manual_allreduce or index < accumulate_steps - 1):
            total, lm_loss, sop_loss = _compute_losses(parts, config, batch)
            scaled = total / accumulate_steps
            if parts.scaler is not None:
                scaled = parts.scaler.scale(scaled)
            scaled.backward()
        # Kept on the device: converting to python floats here would sync the GPU every micro-batch.
        losses = paddle.stack([total.detach(), lm_loss.detach(), sop_loss.detach()]).astype("float32")
        sums = losses if sums is None else sums + losses
    if manual_allreduce:
        _allreduce_gradients(parts.model)
    if parts.scaler is not None:
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
    else:
        parts.optimizer.step()
    parts.optimizer.clear_grad()
    return sums


def evaluate(
    parts: TrainingParts, config, runtime: Runtime, stream: EvalStream, micro_batches: int
) -> Optional[Dict[str, float]]:
    """Mean losses over the next `micro_batches` of `stream` (no grad), averaged across ranks."""
    if stream.loader is None:
        return None
    parts.engine.eval()
    sums, count, start = [0.0, 0.0, 0.0], 0, time.perf_counter()
    with paddle.no_grad():
        for batch in stream.take(micro_batches):
            for slot, value in enumerate(_compute_losses(parts, config, batch)):
                sums[slot] += float(value)
            count += 1
    parts.engine.train()
    if count == 0:
        return None
    means = _mean_across_ranks([value / count for value in sums], runtime)
    elapsed = max(time.perf_counter() - start, 1e-9)
    result = dict(zip(LOSS_NAMES, means))
    result["samples_per_second"] = count * config.schedule.micro_batch_size * runtime.world_size / elapsed
    return result


def save(config, runtime: Runtime, parts: TrainingParts, state: TrainingState, name: str) -> None:
    """Rank 0 writes `output_dir/<name>` atomically; every rank waits for it."""
    if runtime.is_main:
        save_checkpoint(
            str(Path(config.runtime.output_dir) / name),
            checkpoint_parts(parts, state),
            checkpoint_meta(config, state, parts.ernie_config),
            tokenizer=parts.tokenizer,
            model_config=model_config_dict(parts.ernie_config),
        )
    if runtime.world_size > 1:
        paddle.distributed.barrier()


def _flush_losses(state: TrainingState, pending: Optional[paddle.Tensor]) -> None:
    """Move the on-device loss sums into the (checkpointed) python totals."""
    if pending is not None:
        state.pending_losses = [a + float(b) for a, b in zip(state.pending_losses, pending.numpy())]


def _log_train(config, runtime, parts, state, metrics, losses_so_far, interval_start, lr) -> List[float]:
    schedule = config.schedule
    count = max(state.pending_micro_batches, 1)
    means = _mean_across_ranks([value / count for value in state.pending_losses], runtime)
    elapsed = max(time.perf_counter() - interval_start, 1e-9)
    # Steps since the last line: fewer than logging_freq right after a resume.
    steps_per_second = (count // schedule.accumulate_steps) / elapsed
    samples_per_second = steps_per_second * schedule.global_batch_size
    amp = None
    if parts.scaler is not None:
        # GradScaler keeps these private; the original logged them too (REFERENCE §11.8).
        amp = {
            name: float(getattr(parts.scaler, attribute))
            for name, attribute in (
                ("loss_scaling", "_scale"),
                ("incr_count", "_incr_count"),
                ("decr_count", "_decr_count"),
            )
            if getattr(parts.scaler, attribute, None) is not None
        }
    metrics.log_train(
        state.global_step,
        dict(zip(LOSS_NAMES, means)),
        lr,
        steps_per_second,
        samples_per_second,
        samples_per_second * config.data.max_seq_length,
        amp,
    )
    losses_so_far.append(means[0])
    state.pending_losses = [0.0, 0.0, 0.0]
    state.pending_micro_batches = 0
    return means


def train(
    config,
    runtime: Runtime,
    parts: TrainingParts,
    data: PretrainingData,
    state: TrainingState,
    resumed_from: Optional[str] = None,
) -> TrainResult:
    """Run from `state.global_step` to max_steps: log, evaluate, snapshot, checkpoint; then the final test."""
    schedule = config.schedule
    streams = open_run_streams(config, runtime, data, state, parts.ernie_config)
    metrics, train_iterator, valid_stream = streams.metrics, streams.train_batches, streams.valid_stream
    train_losses: List[float] = []
    valid_losses: List[Dict[str, float]] = []
    parts.engine.train()
    if state.pending_rng is not None:
        RngState().set_state_dict(state.pending_rng)
        state.pending_rng = None
    interval_start = time.perf_counter()
    pending: Optional[paddle.Tensor] = None
    try:
        while state.global_step < schedule.max_steps:
            micro_batches = take_micro_batches(train_iterator, schedule.accumulate_steps, config)
            lr = parts.optimizer.get_lr()
            sums = train_step(parts, config, micro_batches)
            pending = sums if pending is None else pending + sums
            parts.lr_scheduler.step()
            state.global_step += 1
            state.consumed_samples += schedule.global_batch_size
            state.pending_micro_batches += schedule.accumulate_steps
            step = state.global_step
            saving = cadence.should_save(step, schedule) or cadence.should_checkpoint(step, schedule)
            if saving or cadence.should_log(step, schedule):
                _flush_losses(state, pending)
                pending = None
            if cadence.should_log(step, schedule):
                _log_train(config, runtime, parts, state, metrics, train_losses, interval_start, lr)
                interval_start = time.perf_counter()
            # Evaluation and saving are not training time: keep them out of the next line's speed.
            paused_at = time.perf_counter()
            if cadence.should_eval(step, schedule):
                result = evaluate(parts, config, runtime, valid_stream, schedule.eval_micro_batches)
                if result is not None:
                    valid_losses.append(result)
                    metrics.log_eval("valid", step, {k: result[k] for k in LOSS_NAMES}, result["samples_per_second"])
            if cadence.should_save(step, schedule):
                save(config, runtime, parts, state, f"model_{step}")
            if cadence.should_checkpoint(step, schedule):
                save(config, runtime, parts, state, "model_last")
            interval_start += time.perf_counter() - paused_at
        test_losses = None
        result = evaluate(
            parts, config, runtime, final_test_stream(config, runtime, data), schedule.test_micro_batches
        )
        if result is not None:
            test_losses = result
            metrics.log_eval(
                "test", state.global_step, {k: result[k] for k in LOSS_NAMES}, result["samples_per_second"]
            )
    finally:
        metrics.close()
    return TrainResult(state.global_step, train_losses, valid_losses, test_losses, resumed_from)


def run_dygraph(config, runtime: Runtime) -> TrainResult:
    """Tokenizer -> model/optimizer -> resume -> data -> train. Built in a unique-name scope so names are stable."""
    prepare_output_dir(config, runtime)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    with paddle.utils.unique_name.guard():
        parts = build_training_parts(config, runtime, tokenizer)
        seed_for_training(config.runtime, runtime)
        state = TrainingState()
        resumed_from = restore_if_resuming(config, runtime, parts, state)
        data = build_pretraining_data(config, runtime, tokenizer, state)
        return train(config, runtime, parts, data, state, resumed_from)
