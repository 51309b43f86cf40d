"""finetune/trainer.py: the evaluation cadence, the checkpoint to resume, and the one Trainer for every task."""

from __future__ import annotations

import pytest

from ernie1.common.errors import ToolkitError
from finetune.arguments import parse_finetune_args
from finetune.trainer import apply_minimum_eval_times, resolve_last_checkpoint

BASE = ["--model_name_or_path", "ckpt", "--output_dir", "out"]


def test_minimum_eval_times_shortens_eval_steps_unless_typed():
    _, _, args = parse_finetune_args(
        "seq_cls", BASE + ["--minimum_eval_times", "4", "--load_best_model_at_end", "--do_eval", "--dataset", "d"]
    )
    apply_minimum_eval_times(args, num_training_steps=100)
    assert (args.eval_steps, args.save_steps) == (25, 25)
    _, _, typed = parse_finetune_args("seq_cls", BASE + ["--minimum_eval_times", "4", "--eval_steps", "50"])
    apply_minimum_eval_times(typed, num_training_steps=100)
    assert typed.eval_steps == 50


def test_output_dir_with_a_model_but_no_checkpoint_is_an_error(tmp_path):
    (tmp_path / "model_state.pdparams").write_bytes(b"x")
    _, _, args = parse_finetune_args("seq_cls", ["--model_name_or_path", "m", "--output_dir", str(tmp_path)])
    args.do_train = True
    with pytest.raises(ToolkitError, match="holds a model but no complete checkpoint-N to resume; pass --overwrite"):
        resolve_last_checkpoint(args)
    args.overwrite_output_dir = True
    assert resolve_last_checkpoint(args) is None
