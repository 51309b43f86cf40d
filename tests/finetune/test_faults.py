"""Issue 8 fault battery, fine-tuning side: each bad input ends in one `error: ...` line naming the file or flag.

Items: 5 (a truncated model_state.pdparams), 8 (--max_seq_length beyond the model's positions), 11 (a non-integer
answer_start; an unseen NER dev tag, refused like an unseen classification label; a capped label list in errors).
"""

from __future__ import annotations

import json
import shutil

import pytest

from ernie1.common.errors import run_cli
from finetune import run_ner, run_qa, run_seq_cls
from tests.finetune.tiny_checkpoint import TINY_ERNIE, write_tiny_pretraining_checkpoint

MAINS = {"seq_cls": run_seq_cls.main, "ner": run_ner.main, "qa": run_qa.main}
QUICK = ["--max_steps", "1", "--max_seq_length", "32", "--report_to", "none", "--disable_tqdm", "true"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("faults") / "model_last", vocab_path)


def one_error_line(capsys) -> str:
    """The single `error: ...` line a failed run printed on stderr, without its prefix."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err[-2000:]
    return errors[0][len("error: ") :]


def write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def sentiment_train(tmp_path) -> str:
    return write(tmp_path / "train.tsv", "label\ttext_a\n1\t很好\n0\t太差\n1\t不错\n0\t一般\n")


# ---------------------------------------------------------------------------------------------------- item 5


def test_truncated_weights_in_the_checkpoint_dir_name_the_file(checkpoint, tmp_path, capsys):
    broken = tmp_path / "model_last"
    shutil.copytree(checkpoint, broken)
    weights = broken / "model_state.pdparams"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    argv = ["--do_train", "--train_file", sentiment_train(tmp_path), "--model_name_or_path", str(broken)]
    assert run_cli(run_seq_cls.main, argv + ["--output_dir", str(tmp_path / "out"), *QUICK]) == 2
    message = one_error_line(capsys)
    assert message.startswith(f"{weights}: cannot read the weights (ValueError: ")
    assert message.endswith(
        "the file is truncated or not a paddle state dict: copy it again or pick another checkpoint"
    )


def test_truncated_converted_pdparams_names_the_file(checkpoint, tmp_path, capsys):
    converted = tmp_path / "ernie-1.0_converted.pdparams"
    converted.write_bytes((checkpoint / "model_state.pdparams").read_bytes()[:1000])
    argv = ["--do_train", "--train_file", sentiment_train(tmp_path), "--model_name_or_path", str(converted)]
    argv += ["--config_name", str(checkpoint), "--tokenizer_name", str(checkpoint)]
    argv += ["--output_dir", str(tmp_path / "out"), *QUICK]
    assert run_cli(run_seq_cls.main, argv) == 2
    assert one_error_line(capsys).startswith(f"{converted}: cannot read the weights (")


# ---------------------------------------------------------------------------------------------------- item 8


@pytest.mark.parametrize("task", sorted(MAINS))
def test_max_seq_length_beyond_the_position_table_is_refused_at_start(task, checkpoint, tmp_path, capsys):
    positions = TINY_ERNIE["max_position_embeddings"]
    # Only --do_predict with a file that does not parse: the check must come before any data is read.
    argv = ["--do_predict", "--test_file", write(tmp_path / "test.txt", "{not data"), "--model_name_or_path"]
    argv += [str(checkpoint), "--output_dir", str(tmp_path / "out"), "--max_seq_length", str(positions + 1)]
    assert run_cli(MAINS[task], argv) == 2
    assert one_error_line(capsys) == (
        f"--max_seq_length {positions + 1}: the model has only {positions} positions "
        f"(max_position_embeddings in {checkpoint}); use --max_seq_length {positions} or less"
    )


def test_max_seq_length_equal_to_the_positions_trains(checkpoint, tmp_path):
    positions = TINY_ERNIE["max_position_embeddings"]
    long_text = "很好" * positions  # longer than the table: truncated to max_seq_length, not a kernel error
    train = write(tmp_path / "train.tsv", f"label\ttext_a\n1\t{long_text}\n0\t太差\n")
    argv = ["--do_train", "--train_file", train, "--model_name_or_path", str(checkpoint)]
    argv += ["--output_dir", str(tmp_path / "out"), *QUICK, "--max_seq_length", str(positions)]
    assert run_seq_cls.main(argv) == 0


# ---------------------------------------------------------------------------------------------------- item 11


def test_non_integer_answer_start_names_file_and_question(checkpoint, tmp_path, capsys):
    squad = {"data": [{"paragraphs": [{"context": "北京是中国的首都。", "qas": [
        {"id": "q1", "question": "首都?", "answers": [{"text": "北京", "answer_start": 0}]},
        {"id": "q2", "question": "哪里?", "answers": [{"text": "北京", "answer_start": "zero"}]},
    ]}]}]}  # fmt: skip
    train = write(tmp_path / "train.json", json.dumps(squad, ensure_ascii=False))
    argv = ["--do_train", "--train_file", train, "--model_name_or_path", str(checkpoint)]
    assert run_cli(run_qa.main, argv + ["--output_dir", str(tmp_path / "out"), *QUICK]) == 2
    assert one_error_line(capsys) == (
        f"--train_file {train}: question q2: answer_start 'zero' is not an integer character offset"
    )


def test_ner_dev_tag_unseen_in_training_is_refused_like_an_unseen_label(checkpoint, tmp_path, capsys):
    train = write(tmp_path / "train.txt", "张 B-PER\n三 I-PER\n去 O\n\n北 B-LOC\n京 I-LOC\n")
    dev = write(tmp_path / "dev.txt", "张 B-PER\n三 I-PER\n\n在 O\n微 B-ORG\n软 I-ORG\n")
    argv = ["--do_train", "--do_eval", "--train_file", train, "--dev_file", dev, "--model_name_or_path"]
    assert run_cli(run_ner.main, argv + [str(checkpoint), "--output_dir", str(tmp_path / "out"), *QUICK]) == 2
    assert one_error_line(capsys) == (
        f"--dev_file {dev} line 5: label 'B-ORG' is not one of the training labels "
        "['B-LOC', 'I-LOC', 'B-PER', 'I-PER', 'O']"
    )
    # The same policy as classification's: an unseen label in the dev file.
    dev_tsv = write(tmp_path / "dev.tsv", "label\ttext_a\n1\t好\n2\t差\n")
    argv = ["--do_train", "--do_eval", "--train_file", sentiment_train(tmp_path), "--dev_file", dev_tsv]
    argv += ["--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / "out2"), *QUICK]
    assert run_cli(run_seq_cls.main, argv) == 2
    assert (
        one_error_line(capsys)
        == f"--dev_file {dev_tsv} line 3: label '2' is not one of the training labels ['0', '1']"
    )


def test_a_wrong_label_column_gives_a_short_error_line(checkpoint, tmp_path, capsys):
    # Header columns swapped: every review becomes a label (the original printed all 2000 of them, ~44 KB).
    rows = "".join(f"这是第{i}条评论，写得很长很长很长很长很长很长很长很长很长很长\t{i % 2}\n" for i in range(2000))
    train = write(tmp_path / "train.tsv", "label\ttext_a\n" + rows)
    dev = write(tmp_path / "dev.tsv", "label\ttext_a\n1\t好\n")
    argv = ["--do_train", "--do_eval", "--train_file", train, "--dev_file", dev, "--model_name_or_path"]
    assert run_cli(run_seq_cls.main, argv + [str(checkpoint), "--output_dir", str(tmp_path / "out"), *QUICK]) == 2
    message = one_error_line(capsys)
    assert message.startswith(f"--dev_file {dev} line 2: label '1' is not one of the training labels ['这是第0条评论")
    assert message.endswith("... (2000 in all)]") and len(message) < 700
    assert message.count("', '") == 9  # ten values shown, each cut at 40 characters


def test_a_config_yml_max_seq_length_beyond_the_positions_says_where_it_came_from(checkpoint, tmp_path, capsys):
    # cmrc2018's section sets max_seq_length 384; the tiny model has 128 positions.
    argv = ["--do_predict", "--dataset", "cmrc2018", "--model_name_or_path", str(checkpoint)]
    assert run_cli(run_qa.main, argv + ["--output_dir", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys) == (
        f"config.yml's max_seq_length 384: the model has only 128 positions (max_position_embeddings in "
        f"{checkpoint}); use --max_seq_length 128 or less"
    )
