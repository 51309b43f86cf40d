"""The Trainer's PdArgumentParser dataclasses, produced from the one flag table, and their typed config.

`ModelArguments` and `DataArguments` hold the model and data flags the table marks `trainer_declares`;
`PreTrainingArguments` extends paddlenlp's TrainingArguments with the schedule flags it lacks. Every other value is
read from the TrainingArguments field the table names (`--learning_rate` for `max_lr`, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

from paddlenlp.trainer import PdArgumentParser, TrainingArguments

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.pretrain.config import PretrainConfig, build_config
from ernie1.pretrain.flags import FLAGS, Flag


def _field(flag: Flag) -> Tuple[str, Any, Any]:
    default = flag.trainer_default if flag.trainer_default is not None else flag.default
    annotation = Optional[flag.type] if default is None else flag.type
    return (flag.trainer or flag.name, annotation, dataclasses.field(default=default, metadata={"help": flag.help}))


def _declared(groups: Sequence[str]) -> List[Tuple[str, Any, Any]]:
    return [_field(flag) for flag in FLAGS if flag.trainer_declares and flag.group in groups]


ModelArguments = dataclasses.make_dataclass("ModelArguments", _declared(("model",)))
ModelArguments.__doc__ = (
    "Which model to pretrain (REFERENCE §1.2, plus --model_config and a real --continue_training)."
)
DataArguments = dataclasses.make_dataclass("DataArguments", _declared(("data",)))
DataArguments.__doc__ = "Where the pretraining data is and how samples are built (REFERENCE §1.2)."
PreTrainingArguments = dataclasses.make_dataclass(
    "PreTrainingArguments",
    _declared(("optimisation", "cadence", "runtime")),
    bases=(TrainingArguments,),
    namespace={"test_iters": property(lambda self: self.eval_iters * 10, doc="Batches of the final test.")},
)
PreTrainingArguments.__doc__ = "paddlenlp TrainingArguments plus the pretraining schedule (REFERENCE §1.2)."
# The Trainer pickles its arguments into every checkpoint (training_args.bin): the classes must be importable here.
for _cls in (ModelArguments, DataArguments, PreTrainingArguments):
    _cls.__module__ = __name__


class _ArgumentParser(PdArgumentParser):
    """PdArgumentParser whose errors are one-line ToolkitErrors instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ToolkitError(message)


def build_argument_parser() -> PdArgumentParser:
    """The parser over (ModelArguments, DataArguments, PreTrainingArguments)."""
    return _ArgumentParser((ModelArguments, DataArguments, PreTrainingArguments))


def parse_trainer_args(argv: Optional[Sequence[str]] = None) -> Tuple[Any, Any, Any]:
    """Parse flags into the three dataclasses; unknown flags and invalid values are one-line ToolkitErrors."""
    try:
        model_args, data_args, training_args = build_argument_parser().parse_args_into_dataclasses(
            args=None if argv is None else list(argv), look_for_args_file=False
        )
    except ValueError as error:
        # TrainingArguments.__post_init__ and the unused-flags check raise ValueError with multi-line text.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ToolkitError(
            first_line.replace(
                "Some specified arguments are not used by the PdArgumentParser", "unrecognized arguments"
            )
        ) from None
    _check_trainer_only(training_args)
    return model_args, data_args, training_args


def _check_trainer_only(args: Any) -> None:
    """What only the Trainer path has: its --do_* switches and positive eval batches for evaluation_loop."""
    if not (args.do_train or args.do_eval or args.do_predict):
        raise FieldError(
            "do_train", "nothing to do: pass {do_train} (and/or {do_eval}, {do_predict})", "do_eval", "do_predict"
        )
    if args.do_eval and not (args.eval_steps is not None and args.eval_steps > 0):
        raise FieldError("eval_steps", "{do_eval} needs a positive {eval_steps}", "do_eval")
    if args.eval_iters <= 0:
        raise FieldError("eval_iters", f"{{eval_iters}} must be positive, got {args.eval_iters}")


def global_batch_size(args: TrainingArguments) -> int:
    """Samples per optimizer step: per-device batch x accumulation x data-parallel ranks."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.dataset_world_size)


def config_values(model_args: Any, data_args: Any, training_args: Any) -> Dict[str, Any]:
    """The flag values under their config-field names (what args.py collects from argparse)."""
    attributes = {**vars(training_args), **vars(data_args), **vars(model_args)}
    values = {}
    for flag in FLAGS:
        name = flag.trainer or (flag.name if flag.trainer_declares else None)
        if name in attributes:
            values[flag.name] = attributes[name]
    values.update(
        global_batch_size=global_batch_size(training_args),
        decay_steps=training_args.decay_steps or None,
        use_amp=bool(training_args.fp16 or training_args.bf16),
        # The Trainer's --fp16 / --bf16 switches are our --use_amp with --amp_dtype float16 / bfloat16.
        amp_dtype="bfloat16" if training_args.bf16 else "float16",
        use_recompute=bool(training_args.recompute),
        device=str(training_args.device),
        logging_freq=max(1, int(training_args.logging_steps)),
        # Without --do_eval the original never evaluated, whatever --eval_steps said.
        eval_freq=int(training_args.eval_steps or 0) if training_args.do_eval else 0,
        checkpoint_steps=int(training_args.save_steps),
        save_steps=int(training_args.save_steps),
        scale_loss=float(training_args.scale_loss),
    )
    return values


def to_pretrain_config(model_args: Any, data_args: Any, training_args: Any) -> PretrainConfig:
    """The shared typed config (the one the dygraph and static scripts build from args.py)."""
    data_world_size = max(1, training_args.dataset_world_size)
    return build_config(
        config_values(model_args, data_args, training_args),
        world_size=max(1, training_args.world_size),
        data_world_size=data_world_size,
        warmup_steps=training_args.warmup_steps if training_args.warmup_steps > 0 else None,
        eval_batch_size=training_args.per_device_eval_batch_size,
        eval_iters_in_global_batches=False,
        train=training_args.do_train,
        final_test=training_args.do_predict,
    )
