"""ERNIE 1.0 pretraining with the paddlenlp Trainer. Single process: `python run_pretrain_trainer.py --do_train ...`;
data parallel: `python -m paddle.distributed.launch --nproc_per_node N run_pretrain_trainer.py ...` (GPUs: `--gpus`).

Flags are paddlenlp's TrainingArguments plus the ModelArguments / DataArguments / PreTrainingArguments of
`ernie1.pretrain.trainer.arguments`, produced from the same flag table as args.py. A run resumes from the newest
usable `output_dir/checkpoint-<step>` unless `--overwrite_output_dir` is given, or from `--resume_from_checkpoint`.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import paddle

from ernie1.common.errors import run_cli
from ernie1.pretrain.flags import rendered_field_errors, trainer_flag_name
from ernie1.pretrain.runtime import launched_world_size, set_cpu_threads, setup_logging
from ernie1.pretrain.trainer.arguments import parse_trainer_args
from ernie1.pretrain.trainer.run import run_trainer


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the three argument groups, set up ranks/threads/logging, then train, evaluate and test."""
    # Configuration errors name the flags a Trainer user typed (--max_seq_length, --learning_rate, ...).
    with rendered_field_errors(trainer_flag_name):
        world_size = launched_world_size()
        if world_size > 1:
            # Before parsing: TrainingArguments reads the parallel environment when it is constructed.
            paddle.distributed.init_parallel_env()
        model_args, data_args, training_args = parse_trainer_args(argv)
        setup_logging(training_args.process_index <= 0)
        if str(training_args.device).startswith("cpu"):
            set_cpu_threads(world_size)
        run_trainer(model_args, data_args, training_args)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
