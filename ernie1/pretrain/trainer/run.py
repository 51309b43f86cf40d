"""A Trainer pretraining run: config -> claimed output_dir -> tokenizer, model, datasets -> train, evaluate, test."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import paddle

from ernie1.common.errors import FieldError
from ernie1.pretrain.amp import AmpPlan, amp_plan
from ernie1.pretrain.data import (
    ReportingDataset,
    base_vocab_size,
    build_pretraining_data,
    load_pretraining_tokenizer,
    reporting_collate,
)
from ernie1.pretrain.lr_schedule import build_lr_scheduler
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.pretrain.mlm_prior import mlm_bias_prior, set_mlm_bias
from ernie1.pretrain.model import (
    BUILTIN_CONFIGS,
    PretrainingCriterion,
    build_checked_ernie_config,
    build_model,
    resolved_attention_impl,
)
from ernie1.pretrain.output_dir import claimed_output_dir
from ernie1.pretrain.quality import dataset_unigram_baseline
from ernie1.pretrain.runtime import Placement, set_seeds
from ernie1.pretrain.trainer.arguments import to_pretrain_config
from ernie1.pretrain.trainer.callback import PretrainingCallback
from ernie1.pretrain.trainer.checkpoints import check_checkpoint_compatible, find_resume_checkpoint
from ernie1.pretrain.trainer.criterion import CriterionWrapper
from ernie1.pretrain.trainer.pretraining_trainer import PretrainingTrainer
from ernie1.text.tokenizer import save_tokenizer_files

logger = logging.getLogger("ernie1")


@dataclass
class TrainerRunResult:
    """What a Trainer run did (tests assert on it; rank 0 also has it in metrics.jsonl and trainer_state.json)."""

    global_step: int
    resumed_from: Optional[str]
    log_history: List[Dict[str, Any]]
    test_metrics: Optional[Dict[str, float]] = None


def placement_from_args(training_args) -> Placement:
    """The shared Placement (ranks and device) as the Trainer's arguments describe it."""
    return Placement(
        device=str(training_args.device),
        world_size=max(1, training_args.world_size),
        rank=max(0, training_args.process_index),
        local_rank=max(0, training_args.local_rank),
        data_rank=max(0, training_args.dataset_rank),
        data_world_size=max(1, training_args.dataset_world_size),
    )


def _check_eval_splits(data, training_args, split_spec: str) -> None:
    for field, dataset, name in (("do_eval", data.valid, "valid"), ("do_predict", data.test, "test")):
        if getattr(training_args, field) and dataset is None:
            raise FieldError(
                field, f"{{{field}}}: the {name} split is empty (give it a share in {{split}} {split_spec})", "split"
            )


def _wrap(dataset: Any) -> Any:
    return ReportingDataset(dataset) if dataset is not None else None


def _amp_plan(config, placement: Placement, training_args) -> AmpPlan:
    """What the Trainer's --fp16 / --bf16 / --fp16_opt_level do here; on CPU they are turned off, with a note."""
    plan = amp_plan(config.runtime.use_amp, config.runtime.amp_dtype, config.runtime.fp16_opt_level, placement.device)
    if config.runtime.use_amp and not plan.enabled:
        flag = "--bf16" if training_args.bf16 else "--fp16"
        logger.warning(f"{flag} has no effect on cpu (Paddle's AMP is GPU/XPU only): training in fp32")
        # Paddle would cast the weights to half precision on CPU under O2 and fail in its kernels.
        training_args.fp16 = training_args.bf16 = False
    return plan


def _log_start(config, placement: Placement, amp: AmpPlan, do_eval: bool, data, metrics, vocab_size: int, step: int):
    """How steps run and the unigram baseline of the valid split (rank 0), as the argparse scripts print them."""
    if not placement.is_main:
        return
    run_info = {"attention_impl": resolved_attention_impl(config, placement.device), "precision": amp.describe()}
    baseline = dataset_unigram_baseline(data.train, data.valid, vocab_size) if do_eval else None
    metrics.log_start(step, run_info, baseline)


def _checkpoint_step(checkpoint: Optional[str]) -> int:
    """N of `checkpoint-N` (0 for a fresh run)."""
    suffix = Path(checkpoint).name.rsplit("-", 1)[-1] if checkpoint else "0"
    return int(suffix) if suffix.isdigit() else 0


def run_trainer(model_args, data_args, training_args) -> TrainerRunResult:
    """Config -> tokenizer, model, scheduler, datasets -> PretrainingTrainer: train (resuming), evaluate, test."""
    from ernie1.data.collate import CollateForPretraining

    config = to_pretrain_config(model_args, data_args, training_args)
    if config.runtime.pack_samples:
        raise FieldError(
            "pack_samples", "{pack_samples} true: packing is implemented for run_pretrain.py only; leave it false"
        )
    placement = placement_from_args(training_args)
    with claimed_output_dir(config.runtime.output_dir, placement, config.to_dict()):
        resume_from = find_resume_checkpoint(training_args)
        if resume_from is not None:
            check_checkpoint_compatible(resume_from, training_args)
        tokenizer = load_pretraining_tokenizer(config.model.tokenizer_source, field=config.model.tokenizer_field)
        ernie_config = build_checked_ernie_config(config, base_vocab_size(tokenizer))
        metrics = MetricsLogger(config.runtime.output_dir, placement.is_main, use_visualdl=False)
        # Auto-generated parameter and optimizer-state names restart in this scope, so a second run in the same
        # process (a resume in a test, a notebook) finds the keys its checkpoint was saved with.
        with paddle.utils.unique_name.guard():
            set_seeds(config.runtime.seed)
            model = build_model(config, ernie_config, placement.device)
            data = build_pretraining_data(config, placement, tokenizer)
            _check_eval_splits(data, training_args, config.data.split)
            # Only a model built from scratch: a warm start keeps its bias, a resume loads the checkpoint's.
            fresh = resume_from is None and config.model.model_name_or_path in BUILTIN_CONFIGS
            prior = mlm_bias_prior(config.model, data.train, int(ernie_config.vocab_size), fresh)
            if prior is not None:
                set_mlm_bias(model, prior)
            amp = _amp_plan(config, placement, training_args)
            vocab_size, step = int(ernie_config.vocab_size), _checkpoint_step(resume_from)
            _log_start(config, placement, amp, training_args.do_eval, data, metrics, vocab_size, step)
            criterion = CriterionWrapper(PretrainingCriterion(config.model.binary_head))
            collate = CollateForPretraining(config.data.max_seq_length, tokenizer.pad_token_id, trainer_style=True)
            trainer = PretrainingTrainer(
                model=model,
                criterion=criterion,
                args=training_args,
                data_collator=reporting_collate(collate),
                train_dataset=_wrap(data.train) if training_args.do_train else None,
                eval_dataset=_wrap(data.valid) if training_args.do_eval else None,
                optimizers=(None, build_lr_scheduler(config.optim)),
                callbacks=[PretrainingCallback(criterion, tokenizer, config.data.max_seq_length, metrics)],
                schedule=config.schedule,
            )
            if training_args.do_train:
                trainer.train(resume_from_checkpoint=resume_from)
                trainer.save_model()
                if training_args.should_save:
                    save_tokenizer_files(tokenizer, Path(training_args.output_dir))
                trainer.save_state()
            elif training_args.do_eval:
                trainer.evaluate()
            test_metrics = None
            if training_args.do_predict:
                test_metrics = trainer.evaluate(eval_dataset=_wrap(data.test), metric_key_prefix="test")
            metrics.close()
            return TrainerRunResult(
                trainer.state.global_step, resume_from, list(trainer.state.log_history), test_metrics
            )
