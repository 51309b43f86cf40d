"""A pretraining run with either engine: output dir, tokenizer, model config, resume choice, data, loop.

The dygraph and static entry points differ only in the engine class they pass; the Trainer entry point uses the
paddlenlp Trainer's loop (`ernie1.pretrain.trainer`) over the same config, data, criterion and checkpoint names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

import paddle

from ernie1.pretrain import loop
from ernie1.pretrain.checkpoint import read_meta
from ernie1.pretrain.data import base_vocab_size, build_pretraining_data, load_pretraining_tokenizer
from ernie1.pretrain.mlm_prior import mlm_bias_prior
from ernie1.pretrain.model import build_checked_ernie_config
from ernie1.pretrain.output_dir import claimed_output_dir
from ernie1.pretrain.resume import check_same_checkpoint_everywhere, checkpoint_meta, choose_checkpoint
from ernie1.pretrain.runtime import Placement

logger = logging.getLogger("ernie1")


def _choose_resume(config, placement: Placement, engine, state) -> tuple:
    """(checkpoint directory or None, its config.yml, its contents as read by the engine)."""
    loaded: dict = {}

    def try_load(path: Path) -> None:
        loaded["checkpoint"] = engine.read_checkpoint(path)

    directory = choose_checkpoint(
        config.runtime.output_dir,
        checkpoint_meta(config, state, engine.ernie_config),
        engine.weights_file,
        engine.foreign_message,
        try_load,
    )
    meta = read_meta(directory) if directory is not None else {"global_step": -1}
    check_same_checkpoint_everywhere(int(meta["global_step"]), placement)
    return directory, meta, loaded.get("checkpoint")


def run_pretraining(config, placement: Placement, engine_class: Callable[..., Any]) -> loop.TrainResult:
    """Claim output_dir -> tokenizer -> engine -> resume choice -> data -> engine.start (+ the MLM bias prior of a
    fresh model) -> loop.train."""
    with claimed_output_dir(config.runtime.output_dir, placement, config.to_dict()):
        tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source, field=config.model.tokenizer_field)
        ernie_config = build_checked_ernie_config(config, base_vocab_size(tokenizer))
        # Auto-generated parameter and optimizer-state names restart in this scope, so a second run in the same
        # process (a resume in a test, a notebook) finds the keys its checkpoint was saved with.
        with paddle.utils.unique_name.guard():
            engine = engine_class(config, placement, tokenizer, ernie_config)
            try:
                state = loop.TrainingState()
                directory, meta, checkpoint = _choose_resume(config, placement, engine, state)
                if directory is not None:
                    # The position from config.yml; the training_state part (if saved) restores the rest.
                    state.global_step, state.consumed_samples = int(meta["global_step"]), int(meta["consumed_samples"])
                data = build_pretraining_data(config, placement, tokenizer)
                engine.start(state, checkpoint)
                # Only a model built from scratch: a warm start or a resume keeps the bias it was trained with.
                fresh = directory is None and not engine.warm_start
                prior = mlm_bias_prior(config.model, data.train, int(ernie_config.vocab_size), fresh)
                if prior is not None:
                    engine.set_mlm_bias(prior)
                resumed_from: Optional[str] = None
                if directory is not None:
                    resumed_from = str(directory)
                    logger.info(f"resumed from {directory} at global step {state.global_step}")
                return loop.train(config, placement, engine, data, state, resumed_from)
            finally:
                engine.close()
