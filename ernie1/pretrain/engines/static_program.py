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

from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.model import (
    AMP_BLACK_LIST,
    AMP_WHITE_LIST,
    PretrainingCriterion,
    build_pretraining_model,
    enable_recompute,
)
from ernie1.pretrain.optim import build_optimizer

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
    """How gradients are combined across processes."""

    world_size: int = 1
    rank: int = 0
    # GPU: fleet collective optimizer (with AMP); CPU: hand-written all_reduce of each gradient.
    use_fleet: bool = False


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
    # Under AMP O2 the fp16 copies of the parameters are made from the fp32 ones after startup (`amp_init`).
    pure_fp16_optimizer: object = None


def enter_static_mode(runtime) -> None:
    """Switch to static mode after `ernie1.pretrain.runtime.init_runtime` (dygraph) joined the collective group.

    CPU data parallel needs the group built in dygraph mode, before `enable_static()` (REFERENCE §20); GPU runs use
    fleet's static collective optimizer, which needs fleet initialised even for one card.
    """
    paddle.enable_static()
    if runtime.device == "gpu" and runtime.world_size == 1:
        from paddle.distributed import fleet

        fleet.init(is_collective=True)
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


def _build_model(ernie_config, binary_head: bool, training: bool, use_recompute: bool = False):
    model = build_pretraining_model(ernie_config, binary_head=binary_head)
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


def _minimize(optimizer, loss, parallel: StaticParallel, use_amp: bool, runtime):
    """Append backward + update; returns the optimizer that ran (fleet's wrapper on GPU)."""
    if parallel.use_fleet:
        return _fleet_minimize(optimizer, loss, use_amp, runtime)
    if parallel.world_size == 1:
        optimizer.minimize(loss)
        return optimizer
    # Static fleet collectives are GPU/XPU only: on CPU, average each gradient with gloo all_reduce (REFERENCE §20).
    params_grads = [(param, grad) for param, grad in paddle.static.append_backward(loss) if grad is not None]
    averaged = []
    for param, grad in params_grads:
        paddle.distributed.all_reduce(grad)
        averaged.append((param, grad / parallel.world_size))
    optimizer.apply_gradients(averaged)
    return optimizer


def _fleet_minimize(optimizer, loss, use_amp: bool, runtime):
    from paddle.distributed import fleet

    strategy = fleet.DistributedStrategy()
    if use_amp:
        strategy.amp = True
        # The original ignored --scale_loss and --fp16_opt_level here (§18.10); both are honoured.
        strategy.amp_configs = {
            "init_loss_scaling": float(runtime.scale_loss),
            "use_dynamic_loss_scaling": True,
            "custom_white_list": AMP_WHITE_LIST,
            "custom_black_list": AMP_BLACK_LIST,
            "use_pure_fp16": runtime.fp16_opt_level == "O2",
            "use_fp16_guard": False,
        }
    distributed = fleet.distributed_optimizer(optimizer, strategy=strategy)
    distributed.minimize(loss)
    return distributed


def build_static_programs(
    config,
    ernie_config,
    parallel: StaticParallel = StaticParallel(),
    last_step: int = 0,
) -> StaticPrograms:
    """Build the train program (one forward per micro-batch of a global step, one update) and the eval program.

    `config` is a `PretrainConfig`; the LR scheduler is positioned at `last_step` (0 for a fresh run).
    """
    binary_head = config.model.binary_head
    accumulate_steps = config.schedule.accumulate_steps
    use_amp = bool(config.runtime.use_amp) and config.runtime.device == "gpu" and paddle.is_compiled_with_cuda()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
        model, criterion = _build_model(
            ernie_config, binary_head, training=True, use_recompute=config.model.use_recompute
        )
        name_map = {key: value.name for key, value in model.state_dict().items()}
        micro_feed_names, totals = [], []
        # Gradient accumulation as k forwards in one program: the mean of per-micro-batch losses, as dygraph.
        for micro in range(accumulate_steps):
            names, feeds = _declare_feeds("" if micro == 0 else f"_micro{micro}", binary_head)
            micro_feed_names.append(names)
            totals.append(_forward_losses(model, criterion, feeds))
        losses = [paddle.add_n([parts[i] for parts in totals]) / accumulate_steps for i in range(3)]
        lr_scheduler = build_lr_scheduler(config.optim, last_step=last_step)
        optimizer = build_optimizer(config.optim, model, lr_scheduler, multi_precision=use_amp)
        used_optimizer = _minimize(optimizer, losses[0], parallel, use_amp, config.runtime)
        if parallel.world_size > 1:
            losses = [_all_reduce_mean(loss, parallel.world_size) for loss in losses]
        train_fetch = dict(zip(LOSS_NAMES, losses))
    eval_program, eval_feed_names, eval_fetch = _build_eval_program(ernie_config, binary_head, parallel)
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
        pure_fp16_optimizer=used_optimizer if use_amp and config.runtime.fp16_opt_level == "O2" else None,
    )


def _build_eval_program(ernie_config, binary_head: bool, parallel: StaticParallel):
    # Built in its own fresh name guard, so its parameters carry the train program's names and share its scope.
    program, unused_startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(program, unused_startup):
        model, criterion = _build_model(ernie_config, binary_head, training=False)
        names, feeds = _declare_feeds("", binary_head)
        losses = list(_forward_losses(model, criterion, feeds))
        if parallel.world_size > 1:
            losses = [_all_reduce_mean(loss, parallel.world_size) for loss in losses]
    return program, names, dict(zip(LOSS_NAMES, losses))


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
    exe.run(programs.startup)
    if programs.pure_fp16_optimizer is not None:
        programs.pure_fp16_optimizer.amp_init(exe.place)
    paddle.seed(seed + rank)


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
