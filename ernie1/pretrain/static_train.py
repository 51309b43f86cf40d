"""The static-graph pretraining run: data and resume checks in dygraph, then build, resume, loop, evaluate, save.

Same flags, data, cadence, logging and checkpoint directory names as the dygraph run (`train_dygraph.py`); only the
step differs: one PIR program per global step (REFERENCE §13, §20).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import paddle

from ernie1.common.errors import ToolkitError
from ernie1.pretrain import cadence
from ernie1.pretrain.checkpoint import check_resume_compatible, find_resume_checkpoint, read_meta
from ernie1.pretrain.data import EvalStream, PretrainingData, base_vocab_size, load_pretraining_tokenizer
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.pretrain.model import BUILTIN_CONFIGS, WEIGHTS_FILE_NAME, build_ernie_config, model_config_dict
from ernie1.pretrain.runtime import Runtime
from ernie1.pretrain.static_checkpoint import (
    STATIC_VARS_PREFIX,
    load_static_checkpoint,
    read_name_map,
    read_static_params,
    save_static_checkpoint,
)
from ernie1.pretrain.static_graph import (
    METRIC_NAMES,
    StaticParallel,
    StaticPrograms,
    build_static_programs,
    create_executor,
    enter_static_mode,
    eval_step,
    initialize_parameters,
    train_step,
)
from ernie1.pretrain.training import (
    TrainingState,
    TrainResult,
    amp_enabled,
    build_pretraining_data,
    checkpoint_meta,
    final_test_stream,
    open_run_streams,
    prepare_output_dir,
    take_micro_batches,
)

logger = logging.getLogger("ernie1")


@dataclass
class StaticSession:
    """What the static loop touches, built once."""

    programs: StaticPrograms
    exe: paddle.static.Executor
    tokenizer: Any
    ernie_config: Any


def build_static_ernie_config(config, tokenizer):
    """The ErnieConfig the dygraph run would build, with the same max_seq_len check."""
    ernie_config = build_ernie_config(config.model, base_vocab_size(tokenizer))
    max_positions = int(ernie_config.max_position_embeddings)
    if config.data.max_seq_length > max_positions:
        raise ToolkitError(
            f"--max_seq_len {config.data.max_seq_length} exceeds the model's max_position_embeddings {max_positions}"
        )
    return ernie_config


def resume_point(config, ernie_config, state: TrainingState) -> Optional[Path]:
    """The checkpoint to resume from (`model_last` or its backup), validated against the flags; sets the state."""
    directory = find_resume_checkpoint(config.runtime.output_dir)
    if directory is None:
        return None
    if not (directory / f"{STATIC_VARS_PREFIX}.pdparams").is_file():
        raise ToolkitError(
            f"{directory}: not a static-graph checkpoint (written by run_pretrain.py?); resume it with the same "
            "script or use a new --output_dir"
        )
    meta = read_meta(directory)
    check_resume_compatible(meta, checkpoint_meta(config, state, ernie_config), str(directory))
    state.global_step = int(meta["global_step"])
    state.consumed_samples = int(meta["consumed_samples"])
    return directory


def load_initial_weights(session: StaticSession, source: str) -> None:
    """`--continue_training`: weights of a dygraph (`model_state.pdparams`) or static checkpoint directory."""
    if source in BUILTIN_CONFIGS:
        raise ToolkitError(
            f"--continue_training needs trained weights: --model_name_or_path {source} is a built-in config "
            "(random init, no download); pass a checkpoint directory instead"
        )
    directory = Path(source)
    name_map = session.programs.name_map
    if (directory / f"{STATIC_VARS_PREFIX}.pdparams").is_file():
        static_params = read_static_params(str(directory / f"{STATIC_VARS_PREFIX}.pdparams"))
        saved_map = read_name_map(str(directory))
        state = {static: static_params[saved_map[key]] for key, static in name_map.items() if key in saved_map}
    elif (directory / WEIGHTS_FILE_NAME).is_file():
        structured = paddle.load(str(directory / WEIGHTS_FILE_NAME), return_numpy=True)
        state = {static: np.asarray(structured[key]) for key, static in name_map.items() if key in structured}
    else:
        raise ToolkitError(f"--model_name_or_path {source}: no {WEIGHTS_FILE_NAME} or {STATIC_VARS_PREFIX}.pdparams")
    missing = sorted(key for key, static in name_map.items() if static not in state)
    if missing:
        raise ToolkitError(f"--model_name_or_path {source}: missing {len(missing)} parameter(s), e.g. {missing[0]}")
    try:
        paddle.static.set_program_state(session.programs.main, state)
    except (ValueError, AssertionError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ToolkitError(f"--model_name_or_path {source}: weights do not fit this model ({first_line})") from None


def build_session(
    config, runtime: Runtime, tokenizer, ernie_config, state: TrainingState, resume_dir
) -> StaticSession:
    """Static mode, programs, executor and parameters (fresh, from --continue_training weights, or resumed)."""
    amp_enabled(config, runtime)  # warns that --use_amp is a no-op on cpu; the program builder skips AMP there
    enter_static_mode(runtime)
    parallel = StaticParallel(runtime.world_size, runtime.rank, use_fleet=runtime.device == "gpu")
    programs = build_static_programs(config, ernie_config, parallel, last_step=state.global_step)
    session = StaticSession(programs, create_executor(runtime.device), tokenizer, ernie_config)
    initialize_parameters(session.exe, programs, config.runtime.seed, runtime.rank)
    if resume_dir is not None:
        # RNG states are per rank and only rank 0 saved them; other ranks keep their seed + rank streams.
        load_static_checkpoint(
            str(resume_dir),
            programs.main,
            programs.name_map,
            restore_rng=runtime.is_main,
            extra_parts={"training_state": state},
        )
        logger.info(f"resumed from {resume_dir} at global step {state.global_step}")
    elif config.model.continue_training:
        load_initial_weights(session, config.model.model_name_or_path)
    return session


def save(config, runtime: Runtime, session: StaticSession, state: TrainingState, name: str) -> None:
    """Rank 0 writes `output_dir/<name>` atomically (the other ranks hold identical parameters)."""
    if not runtime.is_main:
        return
    save_static_checkpoint(
        str(Path(config.runtime.output_dir) / name),
        session.programs.main,
        session.programs.name_map,
        checkpoint_meta(config, state, session.ernie_config),
        tokenizer=session.tokenizer,
        model_config=model_config_dict(session.ernie_config),
        extra_parts={"training_state": state},
    )


def evaluate(config, runtime: Runtime, session: StaticSession, stream: EvalStream, micro_batches: int):
    """Mean losses (already averaged across ranks in the program) over the next `micro_batches` of `stream`."""
    if stream.loader is None:
        return None
    sums, count, start = [0.0, 0.0, 0.0], 0, time.perf_counter()
    for batch in stream.take(micro_batches):
        losses = eval_step(session.exe, session.programs, batch)
        sums = [total + losses[name] for total, name in zip(sums, METRIC_NAMES)]
        count += 1
    if count == 0:
        return None
    result = {name: total / count for name, total in zip(METRIC_NAMES, sums)}
    elapsed = max(time.perf_counter() - start, 1e-9)
    result["samples_per_second"] = count * config.schedule.micro_batch_size * runtime.world_size / elapsed
    return result


def _log_train(config, state: TrainingState, metrics: MetricsLogger, interval_seconds: float, lr: float) -> float:
    schedule = config.schedule
    count = max(state.pending_micro_batches, 1)
    means = [value / count for value in state.pending_losses]
    steps_per_second = schedule.logging_freq / max(interval_seconds, 1e-9)
    samples_per_second = steps_per_second * schedule.global_batch_size
    metrics.log_train(
        state.global_step,
        dict(zip(METRIC_NAMES, means)),
        lr,
        steps_per_second,
        samples_per_second,
        samples_per_second * config.data.max_seq_length,
    )
    state.pending_losses = [0.0, 0.0, 0.0]
    state.pending_micro_batches = 0
    return means[0]


def train(
    config,
    runtime: Runtime,
    session: StaticSession,
    data: PretrainingData,
    state: TrainingState,
    resumed_from: Optional[str] = None,
) -> TrainResult:
    """Run from `state.global_step` to max_steps: log, evaluate, snapshot, checkpoint; then the final test."""
    schedule = config.schedule
    streams = open_run_streams(config, runtime, data, state, session.ernie_config)
    metrics, train_iterator, valid_stream = streams.metrics, streams.train_batches, streams.valid_stream
    train_losses: List[float] = []
    valid_losses: List[Dict[str, float]] = []
    interval_start = time.perf_counter()
    try:
        while state.global_step < schedule.max_steps:
            micro_batches = take_micro_batches(train_iterator, schedule.accumulate_steps, config)
            step_metrics = train_step(session.exe, session.programs, micro_batches)
            state.global_step += 1
            state.consumed_samples += schedule.global_batch_size
            # The program returns means over the micro-batches; the state keeps sums, as the dygraph loop.
            state.pending_losses = [
                total + step_metrics[name] * schedule.accumulate_steps
                for total, name in zip(state.pending_losses, METRIC_NAMES)
            ]
            state.pending_micro_batches += schedule.accumulate_steps
            step = state.global_step
            if cadence.should_log(step, schedule):
                interval = time.perf_counter() - interval_start
                train_losses.append(_log_train(config, state, metrics, interval, step_metrics["learning_rate"]))
                interval_start = time.perf_counter()
            if cadence.should_eval(step, schedule):
                result = evaluate(config, runtime, session, valid_stream, schedule.eval_micro_batches)
                if result is not None:
                    valid_losses.append(result)
                    metrics.log_eval("valid", step, {k: result[k] for k in METRIC_NAMES}, result["samples_per_second"])
            if cadence.should_save(step, schedule):
                save(config, runtime, session, state, f"model_{step}")
            if cadence.should_checkpoint(step, schedule):
                save(config, runtime, session, state, "model_last")
        test_losses = evaluate(
            config, runtime, session, final_test_stream(config, runtime, data), schedule.test_micro_batches
        )
        if test_losses is not None:
            metrics.log_eval(
                "test", state.global_step, {k: test_losses[k] for k in METRIC_NAMES}, test_losses["samples_per_second"]
            )
    finally:
        metrics.close()
    return TrainResult(state.global_step, train_losses, valid_losses, test_losses, resumed_from)


def run_static(config, runtime: Runtime) -> TrainResult:
    """Tokenizer -> resume check -> data (dygraph: collectives and barriers) -> static programs -> train."""
    if config.runtime.use_sharding:
        raise ToolkitError("--use_sharding true: the static script is data parallel only; leave it false")
    prepare_output_dir(config, runtime)
    tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source)
    ernie_config = build_static_ernie_config(config, tokenizer)
    state = TrainingState()
    resume_dir = resume_point(config, ernie_config, state)
    data = build_pretraining_data(config, runtime, tokenizer, state)
    try:
        session = build_session(config, runtime, tokenizer, ernie_config, state, resume_dir)
        return train(config, runtime, session, data, state, str(resume_dir) if resume_dir else None)
    finally:
        # main() may be called in-process (tests): leave Paddle in its default dygraph mode.
        paddle.disable_static()
