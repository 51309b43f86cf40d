"""The static-graph step engine: one PIR program per global step (REFERENCE §13, §20).

Data and the resume choice happen in dygraph mode (collectives, barriers); `start` then enters static mode, builds
the programs with the LR schedule positioned at the resumed step, and applies the checkpoint read earlier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import paddle

from ernie1.common.errors import FieldError
from ernie1.common.formats import WEIGHTS_FILE
from ernie1.pretrain.amp import resolve_amp_plan
from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.engines.static_program import (
    StaticParallel,
    build_static_programs,
    create_executor,
    enter_static_mode,
    eval_step,
    initialize_parameters,
    set_static_mlm_bias,
    static_name_map,
    train_step,
)
from ernie1.pretrain.model import (
    BUILTIN_CONFIGS,
    check_continue_training,
    model_config_dict,
    resolved_attention_impl,
)
from ernie1.pretrain.runtime import Placement
from ernie1.pretrain.static_checkpoint import (
    STATIC_PARAMS_FILE,
    read_name_map,
    read_static_checkpoint,
    read_static_params,
    save_static_checkpoint,
)


class StaticEngine:
    """The train and eval programs, their executor and the static checkpoint files."""

    weights_file = STATIC_PARAMS_FILE
    foreign_message = (
        "not a static-graph checkpoint (written by run_pretrain.py?); resume it with the same script or use a new "
        "{output_dir}"
    )

    def __init__(self, config, placement: Placement, tokenizer: Any, ernie_config: Any):
        if config.runtime.use_sharding:
            raise FieldError(
                "use_sharding", "{use_sharding} true: the static script is data parallel only; leave it false"
            )
        if config.runtime.pack_samples:
            raise FieldError(
                "pack_samples", "{pack_samples} true: packing is implemented for run_pretrain.py only; leave it false"
            )
        check_continue_training(config)
        self.config, self.placement = config, placement
        self.tokenizer, self.ernie_config = tokenizer, ernie_config
        # The static script loads a checkpoint directory's weights only under --continue_training.
        self.warm_start = config.model.continue_training
        self.name_map = static_name_map(ernie_config, config.model.binary_head)
        self.amp = resolve_amp_plan(config.runtime, placement.device)
        self.attention_impl = resolved_attention_impl(config, placement.device)
        # How steps run, for the start-of-run line and record.
        self.run_info = {"attention_impl": self.attention_impl, "precision": self.amp.describe()}
        self.programs = None
        self.exe = None
        self._last_lr = 0.0

    def read_checkpoint(self, directory: Path) -> Dict[str, Any]:
        """Parameters, optimizer state, RNG and training state of `directory`, in memory."""
        loaded = read_static_checkpoint(str(directory), self.name_map, ("rng", "training_state"))
        loaded["directory"] = directory
        return loaded

    def start(self, state, checkpoint: Optional[Dict[str, Any]]) -> None:
        """Static mode, programs, executor and parameters (fresh, from --continue_training weights, or resumed)."""
        if checkpoint is not None and "training_state" in checkpoint:
            state.set_state_dict(checkpoint["training_state"])
        enter_static_mode(self.placement)
        parallel = StaticParallel(self.placement.world_size, self.placement.rank)
        self.programs = build_static_programs(
            self.config,
            self.ernie_config,
            parallel,
            last_step=state.global_step,
            amp=self.amp,
            attention_impl=self.attention_impl,
        )
        self.exe = create_executor(self.placement.device)
        initialize_parameters(self.exe, self.programs, self.config.runtime.seed, self.placement.rank)
        if checkpoint is not None:
            paddle.static.set_program_state(self.programs.main, checkpoint["program_state"])
            # RNG states are per rank and only rank 0 saved them; other ranks keep their seed + rank streams.
            state.pending_rng = checkpoint.get("rng") if self.placement.is_main else None
        elif self.config.model.continue_training:
            self._load_initial_weights(self.config.model.model_name_or_path)

    def _load_initial_weights(self, source: str) -> None:
        """--continue_training: weights of a dygraph (`model_state.pdparams`) or static checkpoint directory."""
        assert source not in BUILTIN_CONFIGS  # check_continue_training refused it
        directory = Path(source)
        where = f"{{model_name_or_path}} {source}"
        if (directory / STATIC_PARAMS_FILE).is_file():
            static_params = read_static_params(str(directory / STATIC_PARAMS_FILE))
            saved_map = read_name_map(str(directory))
            weights = {
                static: static_params[saved_map[key]] for key, static in self.name_map.items() if key in saved_map
            }
        elif (directory / WEIGHTS_FILE).is_file():
            try:
                structured = paddle.load(str(directory / WEIGHTS_FILE), return_numpy=True)
            except Exception as error:  # noqa: BLE001 - a truncated file fails anywhere in pickle/zip
                raise FieldError(
                    "model_name_or_path",
                    f"{where}: {WEIGHTS_FILE} is unreadable ({type(error).__name__}); truncated?",
                ) from None
            weights = {
                static: np.asarray(structured[key]) for key, static in self.name_map.items() if key in structured
            }
        else:
            raise FieldError("model_name_or_path", f"{where}: no {WEIGHTS_FILE} or {STATIC_PARAMS_FILE}")
        missing = sorted(key for key, static in self.name_map.items() if static not in weights)
        if missing:
            raise FieldError("model_name_or_path", f"{where}: missing {len(missing)} parameter(s), e.g. {missing[0]}")
        try:
            paddle.static.set_program_state(self.programs.main, weights)
        except (ValueError, AssertionError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise FieldError("model_name_or_path", f"{where}: weights do not fit this model ({first_line})") from None

    def set_mlm_bias(self, prior: np.ndarray) -> None:
        """Start the MLM decoder bias at `prior`, after `start` (its fp32 master copy too, under AMP O2)."""
        set_static_mlm_bias(self.programs, prior)

    def close(self) -> None:
        """Leave Paddle in its default dygraph mode (main() may be called in-process: tests, notebooks)."""
        paddle.disable_static()

    def set_training(self, training: bool) -> None:
        """The train and eval programs are separate: nothing to switch."""

    def learning_rate(self) -> float:
        return float(self.programs.lr_scheduler())

    def step(self, micro_batches: Sequence[Dict[str, Any]]) -> np.ndarray:
        metrics = train_step(self.exe, self.programs, micro_batches)
        # The program returns rank-averaged means over the micro-batches; the loop keeps sums.
        return np.array([metrics[name] for name in LOSS_NAMES]) * self.config.schedule.accumulate_steps

    def evaluate_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        """Losses and quality sums of one micro-batch (the eval program's fetches)."""
        return eval_step(self.exe, self.programs, batch)

    def mean_across_ranks(self, values: List[float]) -> List[float]:
        """The programs already all-reduce their losses."""
        return list(values)

    def amp_state(self) -> Optional[Dict[str, float]]:
        return None

    def save(self, directory: str, meta: Dict[str, Any], state, keep_existing: bool) -> None:
        save_static_checkpoint(
            directory,
            self.programs.main,
            self.programs.name_map,
            meta,
            tokenizer=self.tokenizer,
            model_config=model_config_dict(self.ernie_config),
            extra_parts={"training_state": state},
            keep_existing=keep_existing,
        )
