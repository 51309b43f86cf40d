"""args.py: the original's flags and the seed README command parse; fixed defaults; one-line errors."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from args import build_parser, config_from_namespace, flag_names, str2bool
from ernie1.common.errors import ToolkitError, run_cli

SEED_README = Path(__file__).resolve().parents[1].parent / "shared" / "docs" / "SEED_README.md"

# Every flag of the original args.py (REFERENCE §1.1) must still be accepted.
ORIGINAL_FLAGS = """
--model_type --model_name_or_path --tokenizer_name_or_path --continue_training --input_dir --output_dir --split
--binary_head --max_seq_len --micro_batch_size --global_batch_size --weight_decay --grad_clip --max_lr --min_lr
--warmup_rate --num_train_epochs --adam_beta1 --adam_beta2 --adam_epsilon --max_steps --decay_steps
--checkpoint_steps --save_steps --logging_freq --eval_freq --eval_iters --use_sharding --use_recompute --use_amp
--sharding_degree --dp_degree --mp_degree --pp_degree --fp16_opt_level --enable_addto --scale_loss
--hidden_dropout_prob --attention_probs_dropout_prob --seed --num_workers --check_accuracy --device
--lr_decay_style --share_folder --masked_lm_prob --short_seq_prob --favor_longer_ngram --max_ngrams --data_impl
""".split()


def seed_readme_training_argv():
    """The arguments after `run_pretrain.py` in the seed README's 8-GPU launch command, exactly as written there."""
    text = SEED_README.read_text(encoding="utf-8")
    block = re.search(r"python -u\s+-m paddle\.distributed\.launch(.*?)```", text, re.S)
    assert block is not None, "launch command not found in SEED_README.md"
    words = shlex.split(block.group(1).replace("\\\n", " "))
    return words[words.index("run_pretrain.py") + 1 :]


def parse(argv, world_size=1):
    return config_from_namespace(build_parser().parse_args(argv), world_size)


def test_every_original_flag_exists():
    assert sorted(set(ORIGINAL_FLAGS) - set(flag_names())) == []


@pytest.mark.skipif(not SEED_README.is_file(), reason="shared docs not available")
def test_seed_readme_command_parses_unchanged(monkeypatch):
    argv = seed_readme_training_argv()
    assert argv[:4] == ["--model_type", "ernie", "--model_name_or_path", "ernie-1.0"]
    ns = build_parser().parse_args(argv)
    assert ns.use_amp is True and ns.device == "gpu" and ns.logging_freq == 20
    config = config_from_namespace(ns, world_size=8)
    assert config.schedule.global_batch_size == 512
    assert config.schedule.accumulate_steps == 1
    assert config.optim.max_lr == 1e-4 and config.optim.min_lr == 1e-5
    assert config.optim.decay_steps == 990000 and config.optim.warmup_steps == 10000
    assert config.schedule.max_steps == 1000000 and config.schedule.save_steps == 50000
    assert config.schedule.checkpoint_steps == 5000 and config.schedule.eval_freq == 1000
    assert config.data.input_dir == "./data" and config.data.max_seq_length == 512
    assert config.runtime.output_dir == "output/ernie-1.0-dp8-gb512"


def test_fixed_defaults():
    config = parse(["--input_dir", "d", "--output_dir", "o"])
    assert config.optim.max_lr >= config.optim.min_lr
    assert config.model.continue_training is False
    assert config.optim.lr_decay_style == "linear"
    assert config.optim.decay_steps == config.schedule.max_steps == 500000
    assert config.optim.warmup_steps == 5000
    assert config.schedule.global_batch_size == 8 and config.schedule.accumulate_steps == 1
    assert config.data.split == "949,50,1" and config.data.max_seq_length == 512


def test_continue_training_is_a_real_boolean():
    # The original declared type=bool, so "false" was True (REFERENCE §18.1).
    assert (
        parse(["--input_dir", "d", "--output_dir", "o", "--continue_training", "false"]).model.continue_training
        is False
    )
    assert (
        parse(["--input_dir", "d", "--output_dir", "o", "--continue_training", "true"]).model.continue_training is True
    )


@pytest.mark.parametrize("text,value", [("yes", True), ("T", True), ("1", True), ("n", False), ("False", False)])
def test_str2bool(text, value):
    assert str2bool(text) is value


def test_derived_numbers_with_accumulation():
    config = parse(
        [
            "--input_dir",
            "d",
            "--output_dir",
            "o",
            "--micro_batch_size",
            "4",
            "--global_batch_size",
            "32",
            "--max_steps",
            "100",
            "--eval_freq",
            "10",
            "--eval_iters",
            "3",
        ],
        world_size=2,
    )
    schedule = config.schedule
    assert schedule.accumulate_steps == 4
    assert schedule.eval_micro_batches == 12 and schedule.test_micro_batches == 120
    # train = global x steps; valid = micro x (evals) x eval micro-batches x ranks; test = micro x test x ranks.
    assert schedule.requested_samples() == (3200, 4 * 10 * 12 * 2, 4 * 120 * 2)
    assert schedule.train_offset(7) == 224
    # §18.3: after 25 steps, 2 evaluations ran (steps 10 and 20), not (25+1)//10.
    assert schedule.valid_offset(25) == 2 * 4 * 12 * 2
    assert schedule.valid_offset(29) == schedule.valid_offset(20)


def test_check_accuracy_zeroes_dropout():
    config = parse(["--input_dir", "d", "--output_dir", "o", "--check_accuracy", "true"])
    assert config.model.hidden_dropout_prob == 0.0 and config.model.attention_probs_dropout_prob == 0.0


BAD_FLAGS = [
    (["--max_lr", "1e-5", "--min_lr", "1e-4"], "error: --min_lr 0.0001 must not exceed --max_lr 1e-05"),
    (["--use_amp", "maybe"], "error: argument --use_amp: expected a boolean (true/false), got 'maybe'"),
    (
        ["--lr_decay_style", "step"],
        "error: argument --lr_decay_style: invalid choice: 'step' (choose from 'linear', 'cosine', 'none')",
    ),
    (
        ["--num_train_epochs", "3"],
        "error: --num_train_epochs is not supported: set the training length with --max_steps",
    ),
    (["--no_such_flag", "1"], "error: unrecognized arguments: --no_such_flag 1"),
    (
        ["--micro_batch_size", "4", "--global_batch_size", "6"],
        "error: --global_batch_size 6 must be a positive multiple of --micro_batch_size x data parallel ranks = 4 x 1 = 4",
    ),
    (["--warmup_rate", "1.5"], "error: --warmup_rate must be within [0, 1], got 1.5"),
    (["--mp_degree", "2"], "error: --mp_degree 2: only data parallelism is supported; leave it at 1"),
    (
        ["--max_steps", "0"],
        "error: --max_steps must be positive, got 0 (the datasets are sized from it; epochs are not used)",
    ),
    (["--micro_batch_size", "x"], "error: argument --micro_batch_size: invalid int value: 'x'"),
]


@pytest.mark.parametrize("extra,message", BAD_FLAGS)
def test_bad_flags_give_one_line_errors(extra, message, capsys):
    def main(argv):
        config_from_namespace(build_parser().parse_args(argv), 1)
        return 0

    assert run_cli(main, ["--input_dir", "d", "--output_dir", "o", *extra]) == 2
    err = capsys.readouterr().err
    assert err == message + "\n"


def test_missing_required_flag():
    with pytest.raises(ToolkitError, match="the following arguments are required: --input_dir, --output_dir"):
        build_parser().parse_args([])
