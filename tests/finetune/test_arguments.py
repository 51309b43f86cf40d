"""finetune/arguments.py and finetune/task_config.py: flag precedence, config.yml, one-line argument errors."""

from __future__ import annotations

import pytest
import yaml

from ernie1.common.errors import ToolkitError, run_cli
from finetune import task_config
from finetune.arguments import build_argument_parser, parse_finetune_args, typed_dests, warn_if_learning_rate_is_tiny
from finetune.task_config import CONFIG_PATH, load_task_config

BASE = ["--model_name_or_path", "ckpt", "--output_dir", "out"]


def test_typed_dests_sees_equals_abbreviations_and_negations():
    parser = build_argument_parser()
    argv = BASE + ["--learning_rate=1e-4", "--per_device_train_batch", "4", "--do_train", "--no_remove_unused_columns"]
    assert typed_dests(parser, argv) == {
        "model_name_or_path",
        "output_dir",
        "learning_rate",
        "per_device_train_batch_size",
        "do_train",
        "remove_unused_columns",
    }


def test_config_values_apply_between_defaults_and_typed_flags():
    _, data_args, args = parse_finetune_args(
        "seq_cls", BASE + ["--dataset", "chnsenticorp_v2", "--num_train_epochs", "2"]
    )
    assert args.num_train_epochs == 2.0  # typed beats the dataset's 8
    assert args.per_device_train_batch_size == 16 and args.per_device_eval_batch_size == 16  # dataset section
    assert args.learning_rate == 5e-5 and args.warmup_ratio == 0.1 and args.weight_decay == 0.01  # DefaultArgs
    assert args.logging_steps == 10 and args.eval_steps == 200 and data_args.max_seq_length == 128


def test_typed_batch_size_keeps_the_other_from_config():
    _, _, args = parse_finetune_args("seq_cls", BASE + ["--dataset", "clue csl", "--per_device_train_batch_size=4"])
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (4, 32)
    assert args.num_train_epochs == 10.0


def test_typed_max_seq_length_beats_the_dataset_section():
    _, data_args, args = parse_finetune_args("qa", BASE + ["--dataset", "cmrc2018", "--max_seq_length", "64"])
    assert data_args.max_seq_length == 64 and args.per_device_train_batch_size == 32 and args.num_train_epochs == 1.0


def test_packing_is_off_unless_asked(tmp_path):
    assert parse_finetune_args("seq_cls", BASE + ["--dataset", "chnsenticorp_v2"])[2].packing is False
    for flags, expected in ((["--packing", "true"], True), (["--packing"], True), (["--packing", "false"], False)):
        assert parse_finetune_args("ner", BASE + flags)[2].packing is expected
    assert "block-diagonal" in build_argument_parser().format_help()
    config = tmp_path / "config.yml"
    config.write_text("SequenceClassification:\n  reviews:\n    packing: true\n", encoding="utf-8")
    named = BASE + ["--dataset", "reviews"]
    assert parse_finetune_args("seq_cls", named, config_path=config)[2].packing is True
    assert parse_finetune_args("seq_cls", named + ["--packing", "false"], config_path=config)[2].packing is False


def test_unknown_dataset_and_no_dataset_get_default_args():
    _, _, named = parse_finetune_args("ner", BASE + ["--dataset", "my_ner"])
    _, _, plain = parse_finetune_args("ner", BASE)
    assert named.per_device_train_batch_size == plain.per_device_train_batch_size == 64
    assert named.num_train_epochs == plain.num_train_epochs == 3.0


def test_config_is_read_next_to_the_module_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text("SequenceClassification:\n  DefaultArgs:\n    num_train_epochs: 99\n")
    monkeypatch.chdir(tmp_path)
    _, _, args = parse_finetune_args("seq_cls", BASE + ["--dataset", "chnsenticorp_v2"])
    assert args.num_train_epochs == 8.0


def test_config_yml_has_the_original_sections_and_values():
    config = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    assert set(config) == {"SequenceClassification", "TokenClassification", "QuestionAnswering"}
    defaults = config["SequenceClassification"]["DefaultArgs"]
    assert defaults == {
        "learning_rate": 5e-5,
        "num_train_epochs": 3,
        "batch_size": 64,
        "max_seq_length": 128,
        "weight_decay": 0.01,
        "logging_steps": 10,
        "eval_steps": 200,
        "minimum_eval_times": -1,
        "max_steps": -1,
        "warmup_steps": 0,
        "warmup_ratio": 0.1,
        "metric": "Accuracy",
    }
    assert load_task_config("seq_cls", "xnli_cn")["learning_rate"] == 1e-4
    assert load_task_config("seq_cls", "clue wsc")["num_train_epochs"] == 50
    assert load_task_config("ner", "peoples_daily_ner")["batch_size"] == 128
    assert load_task_config("qa", "dureader_robust")["batch_size"] == 12
    assert sorted(task_config.known_datasets("seq_cls")) == sorted(
        ["clue afqmc", "clue tnews", "clue iflytek", "clue ocnli", "clue cmnli", "clue wsc", "clue csl", "xnli_cn"]
        + ["chnsenticorp_v2"]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output_dir", "o"], "the following arguments are required: --model_name_or_path (see --help)"),
        (BASE + ["--bogus", "1"], "Some specified arguments are not used by the PdArgumentParser: ['--bogus', '1']"),
        (BASE + ["--do_train"], "--do_train needs data: pass --train_file <file> or --dataset <name>"),
        (
            BASE + ["--do_eval", "--train_file", "x.tsv"],
            "--do_eval needs data: pass --dev_file <file> or --dataset <name>",
        ),
        (BASE + ["--dataset", "d", "--train_file", "/nonexistent.tsv"], "--train_file /nonexistent.tsv: no such file"),
        (BASE + ["--max_seq_length", "4"], "--max_seq_length 4 is too small; use at least 8"),
        (
            BASE
            + ["--dataset", "d", "--do_eval", "--load_best_model_at_end", "--eval_steps", "3", "--save_steps", "7"],
            "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but "
            "found 7, which is not a round multiple of 3.",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message):
    with pytest.raises(ToolkitError) as info:
        parse_finetune_args("seq_cls", argv)
    assert str(info.value) == message


def test_cli_entry_turns_toolkit_error_into_exit_code_2(capsys):
    def main(argv=None):
        parse_finetune_args("seq_cls", ["--output_dir", "o"])
        return 0

    assert run_cli(main) == 2
    assert (
        capsys.readouterr().err == "error: the following arguments are required: --model_name_or_path (see --help)\n"
    )


def test_load_best_model_at_end_saves_at_the_eval_cadence_unless_save_steps_typed():
    argv = BASE + ["--dataset", "chnsenticorp_v2", "--do_eval", "--load_best_model_at_end"]
    _, _, args = parse_finetune_args("seq_cls", argv)
    assert (args.eval_steps, args.save_steps) == (200, 200)
    _, _, typed = parse_finetune_args("seq_cls", argv + ["--eval_steps", "30"])
    assert (typed.eval_steps, typed.save_steps) == (30, 30)
    _, _, seed = parse_finetune_args("seq_cls", argv + ["--eval_steps", "200", "--save_steps", "400"])
    assert (seed.eval_steps, seed.save_steps) == (200, 400)


@pytest.mark.parametrize(
    "flags, stride",
    [([], 64), (["--max_seq_length", "384"], 128), (["--max_seq_length", "64"], 32), (["--doc_stride", "100"], 100)],
)
def test_doc_stride_defaults_to_half_the_window_at_most_128(flags, stride):
    # config.yml's QA DefaultArgs set max_seq_length 128; cmrc2018 sets 384.
    _, data_args, _ = parse_finetune_args("qa", BASE + flags)
    assert data_args.doc_stride == stride
    assert data_args.task_settings().doc_stride == stride


def test_dataset_section_max_seq_length_sets_the_stride():
    _, data_args, _ = parse_finetune_args("qa", BASE + ["--dataset", "cmrc2018"])
    assert (data_args.max_seq_length, data_args.doc_stride) == (384, 128)


@pytest.mark.parametrize(
    "learning_rate, hidden, warns",
    [
        (5e-5, 128, True),
        (1e-4, 256, True),
        (5e-4, 128, False),
        (2e-3, 128, False),
        (5e-5, 768, False),
        (5e-5, None, False),
    ],
)
def test_tiny_learning_rate_on_a_small_model_warns_once(caplog, learning_rate, hidden, warns):
    with caplog.at_level("WARNING", logger="finetune.arguments"):
        warn_if_learning_rate_is_tiny(learning_rate, hidden)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == int(warns)
    if warns:
        assert f"--learning_rate {learning_rate:g}" in lines[0] and f"hidden {hidden}" in lines[0]
        assert "1e-3 to 3e-3" in lines[0]
