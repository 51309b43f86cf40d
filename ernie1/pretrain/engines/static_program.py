"""Static-graph (PIR) programs for pretraining: construction, the optimizer step and their execution.

The dygraph script and this one share the model, criterion, optimizer and LR schedule of `ernie1.pretrain`; only how
one step runs differs. Everything here must be called after `paddle.enable_static()` (see `enter_static_mode`).
Static parameter names are positional (`embedding_0.w_0`, `linear_12.b_0`, ...), so programs are built inside a
fresh `unique_name.guard()` and the `{structured key: static name}` map is saved next to every checkpoint: the
converter turns a static checkpoint into dygraph weights with it (REFERENCE §20).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import paddle

from ernie1.pretrain.amp import FP32, AmpPlan, autocast
from ernie1.pretrain.attention import PADDLE
from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.mlm_prior import MLM_BIAS_KEY
from ernie1.pretrain.model import (
    PretrainingCriterion,
    build_pretraining_model,
    enable_recompute,
    forward_with_states,
)
from ernie1.pretrain.optim import build_optimizer
from ernie1.pretrain.quality import QUALITY_SUM_NAMES, quality_sums

logger = logging.getLogger("ernie1")

# Feed name, shape, dtype; position_ids is always fed (paddlenlp's implicit cumsum breaks on a dynamic batch dim).
FEED_SPECS: Tuple[Tuple[str, Tuple[int, ...], str], ...] = (
    ("input_ids", (-1, -1), "int64"),
    ("token_type_ids", (-1, -1), "int64"),
    ("position_ids", (-1, -1), "int64"),
    ("attention_mask", (-1, 1, 1, -1), "float32"),
    ("masked_positions", (-1,), "int32"),
    ("masked_lm_labels", (-1, 1), "int64"),
    ("next_sentence_labels", (-1, 1), "int64"),
)


@dataclass(frozen=True)
class StaticParallel:
    """How gradients are combined across processes: an all_reduce of each gradient appended to the program."""

    world_size: int = 1
    rank: int = 0


@dataclass
class StaticPrograms:
    """The built train and eval programs with what running and checkpointing them needs."""

    main: paddle.static.Program
    startup: paddle.static.Program
    eval_program: paddle.static.Program
    # Per micro-batch of one global step: the feed names of micro-batch j are `micro_feed_names[j]`.
    micro_feed_names: List[Dict[str, str]]
    eval_feed_names: Dict[str, str]
    train_fetch: Dict[str, object]
    eval_fetch: Dict[str, object]
    # {structured state_dict key: static parameter name}, tied keys included.
    name_map: Dict[str, str]
    lr_scheduler: paddle.optimizer.lr.LRScheduler
    # How the programs compute (fp32, or autocast to fp16/bf16; the loss scaling ops exist for fp16 only).
    amp: AmpPlan = FP32


def enter_static_mode(runtime) -> None:
    """Switch to static mode after `ernie1.pretrain.runtime.init_runtime` (dygraph) joined the collective group.

    Data parallel needs the group built in dygraph mode, before `enable_static()` (REFERENCE §20): the programs'
    all_reduce ops then run on it (gloo on CPU, NCCL on GPU).
    """
    paddle.enable_static()
    if runtime.device == "cpu":
        # With 2+ threads the PIR executor's own thread pool oversubscribes the cores and halves the speed.
        paddle.set_flags({"FLAGS_new_executor_serial_run": True})


def position_ids_for(input_ids: np.ndarray) -> np.ndarray:
    """[B,S] int64 positions 0..S-1 for every row (what the model would derive, fed explicitly)."""
    batch_size, seq_len = input_ids.shape
    return np.broadcast_to(np.arange(seq_len, dtype="int64"), (batch_size, seq_len)).copy()


def feed_for(batch: Mapping[str, np.ndarray], feed_names: Mapping[str, str]) -> Dict[str, np.ndarray]:
    """Map one collated batch (`ernie1.data.collate` keys) to the program's feed names, adding position_ids."""
    values = dict(batch)
    values["position_ids"] = position_ids_for(np.asarray(values["input_ids"]))
    return {feed_name: np.asarray(values[key]) for key, feed_name in feed_names.items()}


def _declare_feeds(suffix: str, binary_head: bool) -> Tuple[Dict[str, str], Dict[str, object]]:
    names, values = {}, {}
    for key, shape, dtype in FEED_SPECS:
        if key == "next_sentence_labels" and not binary_head:
            continue
        names[key] = key + suffix
        values[key] = paddle.static.data(key + suffix, list(shape), dtype)
    return names, values


def _forward(model, feeds: Mapping[str, object]) -> Tuple[object, object]:
    """(prediction_scores, sop_scores or None) of the declared feeds."""
    outputs = model(
        feeds["input_ids"],
        token_type_ids=feeds["token_type_ids"],
        position_ids=feeds["position_ids"],
        attention_mask=feeds["attention_mask"],
        masked_positions=feeds["masked_positions"],
    )
    if isinstance(outputs, (tuple, list)):
        return outputs[0], outputs[1]
    return outputs, None


def _forward_losses(model, criterion, feeds: Mapping[str, object]):
    prediction_scores, sop_scores = _forward(model, feeds)
    return criterion(prediction_scores, sop_scores, feeds["masked_lm_labels"], feeds.get("next_sentence_labels"))


def _build_model(
    ernie_config, binary_head: bool, training: bool, use_recompute: bool = False, attention_impl: str = PADDLE
):
    model = build_pretraining_model(ernie_config, binary_head=binary_head, attention_impl=attention_impl)
    if use_recompute:
        enable_recompute(model)
    if not training:
        model.eval()
    return model, PretrainingCriterion(binary_head=binary_head)


def _all_reduce_mean(value, world_size: int):
    """A copy of `value` averaged over ranks (for logging: the copy keeps the backward graph untouched)."""
    copy = paddle.assign(value)
    paddle.distributed.all_reduce(copy)
    return copy / world_size


def _decorate(amp: AmpPlan, model, optimizer=None):
    """PIR AMP: O2 casts the parameters (the optimizer keeps fp32 master weights); O1 wraps the optimizer only.

    Returns (model, optimizer); the forward must then be built under `autocast(amp)`.
    """
    if not amp.enabled:
        return model, optimizer
    decorated = paddle.amp.decorate(
        models=model, optimizers=optimizer, level=amp.level, dtype=amp.dtype, master_weight=amp.master_weights
    )
    return decorated if optimizer is not None else (decorated, None)


def _loss_scaler(amp: AmpPlan, scale_loss: float):
    """The dynamic loss scaler of a float16 program (None for fp32 and bfloat16)."""
    return paddle.amp.GradScaler(init_loss_scaling=float(scale_loss)) if amp.loss_scaling else None


def _minimize(optimizer, scaler, loss, parallel: StaticParallel) -> None:
    """Append backward (of the scaled loss under fp16) and the update, all-reducing gradients across ranks."""
    if parallel.world_size == 1:
        if scaler is not None:
            scaler.minimize(optimizer, scaler.scale(loss))
        else:
            optimizer.minimize(loss)
        return
    if scaler is not None:
        _bind_loss_scaling(optimizer, scaler, scaler.scale(loss))
    # Static fleet collectives are not used: average each gradient with all_reduce (gloo / NCCL, REFERENCE §20).
    params_grads = [(param, grad) for param, grad in optimizer.backward(loss) if grad is not None]
    averaged = []
    for param, grad in params_grads:
        paddle.distributed.all_reduce(grad)
        averaged.append((param, grad / parallel.world_size))
    optimizer.apply_gradients(averaged)


def _bind_loss_scaling(optimizer, scaler, scaled_loss) -> None:
    """What GradScaler.minimize hands the PIR mixed-precision optimizer before its minimize (Paddle 3.3
    amp/grad_scaler.py), for the backward / all_reduce / apply_gradients sequence of data parallel."""
    optimizer._use_dynamic_loss_scaling = scaler._use_dynamic_loss_scaling
    optimizer._init_loss_scaling = scaler._init_loss_scaling
    optimizer._loss_scaling = scaler._scale
    optimizer._scaled_loss = scaled_loss
    if scaler._use_dynamic_loss_scaling:
        optimizer._incr_every_n_steps = scaler._incr_every_n_steps
        optimizer._decr_every_n_nan_or_inf = scaler._decr_every_n_nan_or_inf
        optimizer._incr_ratio = scaler._incr_ratio
        optimizer._decr_ratio = scaler._decr_ratio
        optimizer._num_good_steps = None
        optimizer._num_bad_steps = None


def build_static_programs(
    config,
    ernie_config,
    parallel: StaticParallel = StaticParallel(),
    last_step: int = 0,
    amp: AmpPlan = FP32,
    attention_impl: str = PADDLE,
) -> StaticPrograms:
    """Build the train program (one forward per micro-batch of a global step, one update) and the eval program.

    `config` is a `PretrainConfig`; the LR scheduler is positioned at `last_step` (0 for a fresh run); `amp` and
    `attention_impl` (paddle or sdpa, resolved) are fixed when the programs are traced.
    """
    binary_head = config.model.binary_head
    accumulate_steps = config.schedule.accumulate_steps
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
        model, criterion = _build_model(
            ernie_config,
            binary_head,
            training=True,
            use_recompute=config.model.use_recompute,
            attention_impl=attention_impl,
        )
        name_map = {key: value.name for key, value in model.state_dict().items()}
        lr_scheduler = build_lr_scheduler(config.optim, last_step=last_step)
        optimizer = build_optimizer(config.optim, model, lr_scheduler, multi_precision=amp.enabled)
        model, optimizer = _decorate(amp, model, optimizer)
        micro_feed_names, totals = [], []
        # Gradient accumulation as k forwards in one program: the mean of per-micro-batch losses, as dygraph.
        with autocast(amp):
            for micro in range(accumulate_steps):
                names, feeds = _declare_feeds("" if micro == 0 else f"_micro{micro}", binary_head)
                micro_feed_names.append(names)
                totals.append(_forward_losses(model, criterion, feeds))
        losses = [paddle.add_n([parts[i] for parts in totals]) / accumulate_steps for i in range(3)]
        _minimize(optimizer, _loss_scaler(amp, config.runtime.scale_loss), losses[0], parallel)
        if parallel.world_size > 1:
            losses = [_all_reduce_mean(loss, parallel.world_size) for loss in losses]
        train_fetch = dict(zip(LOSS_NAMES, losses))
    eval_program, eval_feed_names, eval_fetch = _build_eval_program(
        ernie_config, binary_head, parallel, amp, attention_impl
    )
    return StaticPrograms(
        main=main,
        startup=startup,
        eval_program=eval_program,
        micro_feed_names=micro_feed_names,
        eval_feed_names=eval_feed_names,
        train_fetch=train_fetch,
        eval_fetch=eval_fetch,
        name_map=name_map,
        lr_scheduler=lr_scheduler,
        amp=amp,
    )


def _build_eval_program(
    ernie_config, binary_head: bool, parallel: StaticParallel, amp: AmpPlan = FP32, attention_impl: str = PADDLE
):
    """Losses and quality sums (ernie1.pretrain.quality) of one batch, rank-averaged, in eval mode."""
    # Built in its own fresh name guard, so its parameters carry the train program's names and share its scope (with
    # the train program's dtypes: the same AMP decoration).
    program, unused_startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(program, unused_startup):
        model, criterion = _build_model(ernie_config, binary_head, training=False, attention_impl=attention_impl)
        model, _ = _decorate(amp, model)
        names, feeds = _declare_feeds("", binary_head)
        with autocast(amp):
            scores, sop_scores, states = forward_with_states(model, feeds)
            labels, sop_labels = feeds["masked_lm_labels"], feeds.get("next_sentence_labels")
            losses = list(criterion(scores, sop_scores, labels, sop_labels))
            sums = quality_sums(scores, sop_scores, states, labels, sop_labels, feeds["attention_mask"])
        values = [*losses, *(sums[index] for index in range(len(QUALITY_SUM_NAMES)))]
        if parallel.world_size > 1:
            values = [_all_reduce_mean(value, parallel.world_size) for value in values]
    return program, names, dict(zip(LOSS_NAMES + QUALITY_SUM_NAMES, values))


def build_inference_program(ernie_config, binary_head: bool = True):
    """(program, startup, feed names, (prediction_scores, sop_scores or None)) in eval mode; for the converter test."""
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(program, startup):
        model, _ = _build_model(ernie_config, binary_head, training=False)
        names, feeds = _declare_feeds("", binary_head)
        outputs = _forward(model, feeds)
    return program, startup, names, outputs


def static_name_map(ernie_config, binary_head: bool) -> Dict[str, str]:
    """{structured key: static name} of the model as the train program builds it (in a throw-away program)."""
    was_dynamic = paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        # A fresh startup program too: parameters declared in the default one would clash with the real build.
        programs = (paddle.static.Program(), paddle.static.Program())
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(*programs):
            model = build_pretraining_model(ernie_config, binary_head=binary_head)
            return {key: value.name for key, value in model.state_dict().items()}
    finally:
        if was_dynamic:
            paddle.disable_static()


def create_executor(device: str) -> paddle.static.Executor:
    """Executor on `device` (`cpu`, or this rank's card as the launcher assigned it)."""
    if device == "cpu":
        return paddle.static.Executor(paddle.CPUPlace())
    return paddle.static.Executor(paddle.CUDAPlace(paddle.distributed.ParallelEnv().device_id))


def initialize_parameters(exe: paddle.static.Executor, programs: StaticPrograms, seed: int, rank: int) -> None:
    """Run the startup program with the same seed on every rank (identical replicas), then seed dropout per rank."""
    paddle.seed(seed)
    # Under PIR AMP O2 the startup program itself creates the half-precision parameters (no amp_init).
    exe.run(programs.startup)
    paddle.seed(seed + rank)


def _as_dtype_of(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """float32 `values` in the storage dtype of `like` (bfloat16 is stored as uint16: the top half of float32)."""
    if like.dtype == np.uint16:
        return (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.asarray(values).astype(like.dtype)


def set_static_mlm_bias(programs: StaticPrograms, prior: np.ndarray) -> None:
    """Write `prior` into the MLM decoder bias of the initialised programs (their shared scope: train and eval), and
    into its fp32 master weight where AMP O2 keeps one (`<param>_fp32_master_<n>`)."""
    name = programs.name_map[MLM_BIAS_KEY]
    state = programs.main.state_dict()
    values = {
        key: _as_dtype_of(prior, np.asarray(value))
        for key, value in state.items()
        if key == name or key.startswith(f"{name}_fp32_master")
    }
    paddle.static.set_program_state(programs.main, values)


def _run(exe, program, feed, fetch: Dict[str, object]) -> Dict[str, float]:
    values = exe.run(program, feed=feed, fetch_list=list(fetch.values()))
    return {name: float(np.asarray(value).reshape(-1)[0]) for name, value in zip(fetch, values)}


def train_step(
    exe: paddle.static.Executor, programs: StaticPrograms, micro_batches: Sequence[Mapping[str, np.ndarray]]
) -> Dict[str, float]:
    """One global step over `accumulate_steps` micro-batches; returns the (rank-averaged) losses and the lr used."""
    if len(micro_batches) != len(programs.micro_feed_names):
        raise ValueError(f"expected {len(programs.micro_feed_names)} micro-batches, got {len(micro_batches)}")
    feed = {}
    for batch, names in zip(micro_batches, programs.micro_feed_names):
        feed.update(feed_for(batch, names))
    learning_rate = float(programs.lr_scheduler())
    metrics = _run(exe, programs.main, feed, programs.train_fetch)
    programs.lr_scheduler.step()
    metrics["learning_rate"] = learning_rate
    return metrics


def eval_step(
    exe: paddle.static.Executor, programs: StaticPrograms, batch: Mapping[str, np.ndarray]
) -> Dict[str, float]:
    """Losses of one micro-batch without dropout or update."""
    return _run(exe, programs.eval_program, feed_for(batch, programs.eval_feed_names), programs.eval_fetch)
