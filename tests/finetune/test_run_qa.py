"""run_qa.py end to end on CMRC 2018 (../shared/data/cmrc2018) from a tiny pretraining checkpoint, plus error paths."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.tasks import get_task
from ernie1.tasks.qa import qa_metrics, read_squad_file
from finetune import data_sources
from finetune.data import load_split
from finetune.run_qa import main
from tests.finetune.tiny_checkpoint import read_json, write_tiny_pretraining_checkpoint

WINDOW_FLAGS = [
    "--max_seq_length",
    "128",
    "--doc_stride",
    "64",
    "--max_query_length",
    "32",
    "--max_answer_length",
    "20",
]
TRAIN_FLAGS = WINDOW_FLAGS + [
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--learning_rate", "1e-3",
    "--warmup_ratio", "0.1", "--logging_steps", "50", "--report_to", "none", "--disable_tqdm", "true", "--seed", "7",
]  # fmt: skip
NUM_QUESTIONS = 200


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("ckpt") / "model_last", vocab_path)


@pytest.fixture(scope="module")
def cmrc_files(tmp_path_factory):
    if data_sources.cmrc2018_dir() is None:
        pytest.skip("CMRC 2018 not in ../shared/data/cmrc2018 (relative to the project root)")
    return data_sources.write_cmrc2018(str(tmp_path_factory.mktemp("cmrc")), max_questions=NUM_QUESTIONS)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, checkpoint, cmrc_files):
    """One full run with the seed README's flags: train, eval (best model kept), predict, export."""
    output_dir = tmp_path_factory.mktemp("run") / "cmrc2018"
    argv = ["--do_train", "--do_eval", "--do_predict", "--do_export", "--model_name_or_path", str(checkpoint)]
    argv += ["--dataset", "cmrc2018", "--output_dir", str(output_dir), "--max_steps", "200"]
    argv += ["--train_file", str(cmrc_files["train"]), "--dev_file", str(cmrc_files["dev"])]
    argv += ["--test_file", str(cmrc_files["dev"]), "--eval_steps", "100", "--save_steps", "100"]
    argv += ["--metric_for_best_model", "f1", "--load_best_model_at_end", "--save_total_limit", "1"]
    assert main(argv + TRAIN_FLAGS) == 0
    return output_dir


@pytest.mark.slow
def test_finetuned_qa_beats_empty_answers(finetuned, cmrc_files):
    dev = read_squad_file(str(cmrc_files["dev"]), "--dev_file")
    empty = qa_metrics([""] * len(dev), [e.answers for e in dev])
    assert (empty["exact_match"], empty["f1"]) == (0.0, 0.0)
    results = read_json(finetuned / "eval_results.json")
    assert results["eval_num_scored"] == NUM_QUESTIONS
    assert results["eval_f1"] > empty["f1"] + 2.0
    state = read_json(finetuned / "trainer_state.json")  # --load_best_model_at_end: the final eval is the best one
    assert state["best_metric"] == pytest.approx(results["eval_f1"])
    # A random head scores F1 ~5 on CMRC by chance overlap, so the learning signal is checked on the loss too:
    # start/end cross-entropy starts near ln(128) and must fall well below it.
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_predictions_file_matches_test_results(finetuned, cmrc_files):
    dev = read_squad_file(str(cmrc_files["dev"]), "--test_file")
    predictions = json.loads((finetuned / "test_predictions.json").read_text(encoding="utf-8"))
    assert list(predictions) == [e.id for e in dev]
    for example in dev:
        assert predictions[example.id] in example.context and predictions[example.id]
    expected = qa_metrics([predictions[e.id] for e in dev], [e.answers for e in dev])
    results = read_json(finetuned / "test_results.json")
    assert results["test_f1"] == pytest.approx(expected["f1"])
    assert results["test_exact_match"] == pytest.approx(expected["exact_match"])
    # the same data as dev, the same (best) model: the same score
    assert results["test_f1"] == pytest.approx(read_json(finetuned / "eval_results.json")["eval_f1"])


@pytest.mark.slow
def test_export_answers_like_the_trained_model(finetuned, cmrc_files):
    from deploy.predictor import ExportedModel, pad_batch
    from ernie1.tasks.qa import build_features, extract_answers

    export = finetuned / "export"
    config = read_json(export / "export_config.json")
    assert config["task"] == "qa"
    assert (config["max_seq_length"], config["doc_stride"], config["max_query_length"]) == (128, 64, 32)
    model = ExportedModel.load(str(export), device="cpu")
    examples = read_squad_file(str(cmrc_files["dev"]), "--test_file")[:12]
    features = build_features(examples, model.tokenizer, 128, 64, 32)
    inputs = [{"input_ids": f.input_ids, "token_type_ids": f.token_type_ids} for f in features]
    start_logits, end_logits = model.run(pad_batch(inputs, model.tokenizer.pad_token_id, model.input_names))[:2]
    answers = extract_answers([e.context for e in examples], features, start_logits, end_logits, 20, 20)
    predictions = json.loads((finetuned / "test_predictions.json").read_text(encoding="utf-8"))
    assert [a["text"] for a in answers] == [predictions[e.id] for e in examples]


# ---------------------------------------------------------------------------------------------------- errors


def write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False), "utf-8")
    return path


def test_bad_inputs_give_one_line_errors(tmp_path, checkpoint, capsys):
    context = "北京是中国的首都。" * 40  # far longer than max_seq_length: windowed, not an error
    no_answers = write(tmp_path, "noans.json", {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "首都?", "answers": [{"text": "上海", "answer_start": 0}]}]}]}]})  # fmt: skip
    empty = write(tmp_path, "empty.json", "")
    not_squad = write(tmp_path, "list.json", [1, 2])
    long_question = write(tmp_path, "longq.json", {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "问" * 40, "answers": [{"text": "北京", "answer_start": 0}]}]}]}]})  # fmt: skip
    common = ["--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    cases = [
        (["--do_train", "--train_file", str(empty)], f"--train_file {empty}: the file is empty"),
        (
            ["--do_train", "--train_file", str(not_squad)],
            f"--train_file {not_squad}: expected SQuAD JSON: an object with a 'data' list of articles",
        ),
        (
            ["--do_train", "--train_file", str(no_answers)],
            f"--train_file {no_answers}: no question has an answer found in its context; training needs answers",
        ),
        (
            ["--do_train", "--train_file", str(long_question), "--max_seq_length", "16", "--max_query_length", "64"],
            "--max_seq_length 16 leaves no room for the context after a 40-token question",
        ),
        (
            ["--do_train", "--train_file", str(long_question), "--doc_stride", "0"],
            "--doc_stride 0: must be at least 1",
        ),
        (
            ["--do_train", "--train_file", str(long_question), "--packing", "true"],
            "--packing: run_qa.py does not pack (run_seq_cls.py and run_ner.py do); drop --packing",
        ),
    ]
    for flags, message in cases:
        assert run_cli(main, flags + common) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_long_context_trains_through_windows(tmp_path, checkpoint):
    """A context ten windows long, answer near the end: windowed training and prediction run and find text."""
    context = "甲乙丙丁戊己庚辛壬癸" * 30 + "答案就在这里" + "子丑寅卯" * 10
    qas = [{"id": f"q{i}", "question": "答案在哪?", "answers": [{"text": "答案就在这里", "answer_start": 300}]}
           for i in range(8)]  # fmt: skip
    train = write(tmp_path, "train.json", {"data": [{"paragraphs": [{"context": context, "qas": qas}]}]})
    output_dir = tmp_path / "out"
    argv = ["--do_train", "--do_predict", "--model_name_or_path", str(checkpoint), "--train_file", str(train)]
    argv += ["--test_file", str(train), "--output_dir", str(output_dir), "--max_steps", "3"]
    argv += [
        "--max_seq_length",
        "48",
        "--doc_stride",
        "16",
        "--per_device_train_batch_size",
        "8",
        "--report_to",
        "none",
    ]
    assert main(argv) == 0
    predictions = json.loads((output_dir / "test_predictions.json").read_text(encoding="utf-8"))
    assert sorted(predictions) == [f"q{i}" for i in range(8)]
    assert all(answer and answer in context for answer in predictions.values())
    assert 0.0 <= read_json(output_dir / "test_results.json")["test_f1"] <= 100.0


@pytest.mark.slow
def test_named_dataset_offline_names_the_local_files():
    args = SimpleNamespace(dataset="cmrc2018", train_file=None, dev_file=None, test_file=None)
    try:
        load_split(get_task("qa"), args, "train")
    except ToolkitError as error:
        message = str(error)
    else:
        pytest.skip("paddlenlp could download cmrc2018 here")
    assert message.startswith("--dataset cmrc2018: cannot load split 'train' through paddlenlp (")
    assert "pass local files instead: --train_file train.json --dev_file dev.json" in message
