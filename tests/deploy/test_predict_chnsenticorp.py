"""deploy/predict_chnsenticorp.py and deploy/predictor.py over a classifier exported by finetune.export.export_model."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from deploy.predict_chnsenticorp import EXAMPLE_TEXTS, main
from deploy.predictor import ExportedModel, find_model_files
from ernie1.common.errors import ToolkitError, run_cli
from tests.finetune.tiny_checkpoint import read_json, write_tiny_pretraining_checkpoint

TEXTS = [
    "质量很好，物流也快，下次还来。",
    "太差了",
    "书的内容一般，纸张还可以，但是包装破损严重，客服态度也不好，退货流程很麻烦。" * 3,  # longer than max_seq_length
    "性价比高",
    "不推荐购买",
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, vocab_path):
    """(dygraph classifier, export dir): a tiny checkpoint with a seeded 2-class head, exported as run_seq_cls does."""
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    from finetune.export import export_model
    from finetune.loading import load_model_for_task, load_tokenizer_for_finetune

    root = tmp_path_factory.mktemp("deploy")
    checkpoint = write_tiny_pretraining_checkpoint(root / "model_last", vocab_path)
    paddle.seed(3)
    model = load_model_for_task(ErnieForSequenceClassification, str(checkpoint), num_classes=2)
    tokenizer = load_tokenizer_for_finetune(str(checkpoint))
    extra = {"max_seq_length": 24, "label_list": ["0", "1"], "label_names": ["negative", "positive"]}
    export_dir = export_model(model, tokenizer, str(root / "out"), "seq_cls", extra)
    model.eval()
    return model, export_dir


def copy_export(export_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(export_dir, target)
    return target


def test_export_writes_the_documented_files(classifier):
    _, export_dir = classifier
    assert export_dir.name == "export"
    assert {"inference.json", "inference.pdiparams", "vocab.txt", "tokenizer_config.json", "export_config.json"} <= {
        p.name for p in export_dir.iterdir()
    }
    assert read_json(export_dir / "export_config.json")["task"] == "seq_cls"


def test_predictor_equals_dygraph_on_padded_truncated_batch(classifier):
    import paddle

    model, export_dir = classifier
    exported = ExportedModel.load(str(export_dir), device="cpu")
    feeds = exported.encode(TEXTS)
    assert feeds["input_ids"].shape == (len(TEXTS), 24)  # the long text is cut to max_seq_length
    assert (
        feeds["input_ids"][1, 4] == 102 and feeds["input_ids"][1, 5] == 0
    )  # and the short ones are padded with [PAD]
    with paddle.no_grad():
        expected = model(paddle.to_tensor(feeds["input_ids"]), paddle.to_tensor(feeds["token_type_ids"])).numpy()
    actual = exported.run(feeds)[0]
    assert actual.shape == (len(TEXTS), 2)
    assert np.abs(actual - expected).max() <= 1e-5


def test_output_lines_in_order_and_independent_of_batch_size(classifier, capsys):
    _, export_dir = classifier
    assert main(["--model_dir", str(export_dir), "--device", "cpu", "--batch_size", "1", *TEXTS]) == 0
    single = capsys.readouterr().out.splitlines()
    assert main(["--model_dir", str(export_dir), "--device", "cpu", "--batch_size", "32", *TEXTS]) == 0
    batched = capsys.readouterr().out.splitlines()
    assert single == batched and len(single) == len(TEXTS)
    for line, text in zip(single, TEXTS):
        head, label = line.split(" \t Label: ")
        assert head == f"Data: {text}" and label in ("negative", "positive")


def test_labels_follow_argmax_of_dygraph_logits(classifier, capsys):
    import paddle

    model, export_dir = classifier
    exported = ExportedModel.load(str(export_dir), device="cpu")
    feeds = exported.encode(TEXTS)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(feeds["input_ids"]), paddle.to_tensor(feeds["token_type_ids"])).numpy()
    main(["--model_dir", str(export_dir), "--device", "cpu", *TEXTS])
    labels = [line.rsplit("\t Label: ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert labels == [["negative", "positive"][i] for i in logits.argmax(-1)]


def test_texts_from_file_and_stdin_and_default_examples(classifier, tmp_path, monkeypatch, capsys):
    _, export_dir = classifier
    source = tmp_path / "texts.txt"
    source.write_text("好评\n 差评 \r\n", encoding="utf-8")
    main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", str(source)])
    assert [line.split(" \t ")[0] for line in capsys.readouterr().out.splitlines()] == ["Data: 好评", "Data: 差评"]
    monkeypatch.setattr("sys.stdin", io.StringIO("一般\n"))
    main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", "-", "额外"])
    assert [line.split(" \t ")[0] for line in capsys.readouterr().out.splitlines()] == ["Data: 额外", "Data: 一般"]
    main(["--model_dir", str(export_dir), "--device", "cpu"])
    assert [line.split(" \t ")[0] for line in capsys.readouterr().out.splitlines()] == [
        f"Data: {text}" for text in EXAMPLE_TEXTS
    ]


@pytest.mark.parametrize(
    "missing, message",
    [
        ("inference.json", "--model_dir {d}: no inference.json (or .pdmodel); export with run_*.py --do_export"),
        ("inference.pdiparams", "--model_dir {d}: inference.pdiparams is missing next to inference.json; re-export"),
        ("vocab.txt", "--model_dir {d}: vocab.txt is missing; re-export with --do_export"),
        ("export_config.json", "--model_dir {d}: export_config.json is missing; re-export with --do_export"),
    ],
)
def test_export_dir_missing_a_file_is_a_one_line_error(classifier, tmp_path, capsys, missing, message):
    _, export_dir = classifier
    broken = copy_export(export_dir, tmp_path)
    (broken / missing).unlink()
    assert run_cli(main, ["--model_dir", str(broken), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: {message.format(d=broken)}\n"


def test_other_bad_inputs(classifier, tmp_path):
    _, export_dir = classifier
    with pytest.raises(ToolkitError, match=r"^--model_dir /nonexistent/export: no such directory; export with"):
        main(["--model_dir", "/nonexistent/export"])
    with pytest.raises(ToolkitError, match=r"^--input_file .*missing.txt: no such file$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", str(tmp_path / "missing.txt")])
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"empty.txt: no text in it \(one text per line\)$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", str(tmp_path / "empty.txt")])
    with pytest.raises(ToolkitError, match=r"^--batch_size 0: must be at least 1$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "--batch_size", "0", "好"])
    ner = copy_export(export_dir, tmp_path / "ner")
    (ner / "export_config.json").write_text('{"task": "ner", "max_seq_length": 24}', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"a ner export; use deploy/predict.py for it$"):
        main(["--model_dir", str(ner), "--device", "cpu"])


def test_gpu_on_a_cpu_build_is_an_error(classifier):
    import paddle

    if paddle.device.is_compiled_with_cuda():
        pytest.skip("CUDA build")
    with pytest.raises(ToolkitError, match=r"^--device gpu: this Paddle build has no CUDA support; use --device cpu$"):
        main(["--model_dir", str(classifier[1]), "--device", "gpu"])


def test_legacy_pdmodel_exports_are_found(tmp_path):
    for name in ("model.pdmodel", "model.pdiparams"):
        (tmp_path / name).write_bytes(b"")
    assert find_model_files(str(tmp_path)) == (tmp_path / "model.pdmodel", tmp_path / "model.pdiparams")
    (tmp_path / "inference.pdmodel").write_bytes(b"")
    with pytest.raises(ToolkitError, match="inference.pdiparams is missing next to inference.pdmodel"):
        find_model_files(str(tmp_path))
