"""Issue 8 fault battery, deployment side: output that looked valid but was wrong now fails in one line.

Items: 8 (--max_seq_length beyond the export's max_position_embeddings), 9 (an empty text printed the sample
reviews; non-UTF-8 stdin was decoded with U+FFFD and labelled; blank lines were dropped, so output lines no longer
matched input lines). The policy: one output line per input line; an empty text or an undecodable line is an error.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import predict, predict_chnsenticorp
from ernie1.common.errors import run_cli
from tests.finetune.tiny_checkpoint import TINY_ERNIE, write_tiny_pretraining_checkpoint

REPO = Path(__file__).resolve().parents[2]
NER_LABELS = ["B-LOC", "I-LOC", "B-PER", "I-PER", "O"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory, vocab_path):
    """{task: export dir} of tiny seq_cls, ner and qa models exported as run_*.py --do_export does."""
    import paddle
    from paddlenlp.transformers import (
        ErnieForQuestionAnswering,
        ErnieForSequenceClassification,
        ErnieForTokenClassification,
    )

    from finetune.export import export_model
    from finetune.loading import load_model_for_task, load_tokenizer_for_finetune

    root = tmp_path_factory.mktemp("deploy_faults")
    checkpoint = write_tiny_pretraining_checkpoint(root / "model_last", vocab_path)
    tokenizer = load_tokenizer_for_finetune(str(checkpoint))
    specs = {
        "seq_cls": (ErnieForSequenceClassification, {"num_classes": 2}, {"label_list": ["0", "1"]}),
        "ner": (ErnieForTokenClassification, {"num_classes": len(NER_LABELS)}, {"label_list": NER_LABELS}),
        "qa": (ErnieForQuestionAnswering, {}, {"doc_stride": 8, "max_query_length": 8}),
    }
    exported = {}
    for task, (model_cls, head, settings) in specs.items():
        paddle.seed(5)
        model = load_model_for_task(model_cls, str(checkpoint), **head)
        exported[task] = export_model(model, tokenizer, str(root / task), task, {"max_seq_length": 32, **settings})
    return exported


def stdin_bytes(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def error_of(main, argv, capsys) -> str:
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err[len("error: ") : -1]


# ---------------------------------------------------------------------------------------------------- item 9


def test_an_empty_text_is_an_error_not_the_sample_reviews(exports, capsys):
    base = ["--model_dir", str(exports["seq_cls"]), "--device", "cpu"]
    message = "text argument 1 is empty; pass non-empty texts (or --input_file)"
    assert error_of(predict_chnsenticorp.main, [*base, ""], capsys) == message
    assert error_of(predict.main, [*base, " "], capsys) == message
    assert error_of(predict_chnsenticorp.main, [*base, "好", ""], capsys).startswith("text argument 2 is empty")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("script", [predict_chnsenticorp, predict])
def test_non_utf8_stdin_names_the_line(script, exports, monkeypatch, capsys):
    stdin_bytes(monkeypatch, "好评\n".encode("utf-8") + "差评\n".encode("gbk"))
    argv = ["--model_dir", str(exports["seq_cls"]), "--device", "cpu", "--input_file", "-"]
    assert error_of(script.main, argv, capsys) == "--input_file - (stdin) line 2: not UTF-8 text (byte 1 of the line)"
    assert capsys.readouterr().out == ""  # nothing labelled before the error


def test_blank_lines_are_errors_so_outputs_match_inputs(exports, tmp_path, monkeypatch, capsys):
    source = tmp_path / "reviews.txt"
    source.write_bytes("好评\n\n差评\n".encode("utf-8"))
    argv = ["--model_dir", str(exports["seq_cls"]), "--device", "cpu", "--input_file", str(source)]
    assert error_of(predict_chnsenticorp.main, argv, capsys) == (
        f"--input_file {source} line 2: empty line; every line is one input (remove blank lines)"
    )
    stdin_bytes(monkeypatch, b"\xe5\xa5\xbd\n  \n")
    argv[-1] = "-"
    assert error_of(predict.main, argv, capsys).startswith("--input_file - (stdin) line 2: empty line")


@pytest.mark.parametrize("task", ["seq_cls", "ner"])
def test_one_output_line_per_input_line_in_order(task, exports, monkeypatch, capsys):
    lines = ["质量很好", "  太差了  ", "质量很好", "张三在北京\t工作", "\ufeff一般"]
    stdin_bytes(monkeypatch, ("\ufeff" + "\r\n".join(lines[:-1]) + "\n" + lines[-1][1:]).encode("utf-8"))
    argv = ["--model_dir", str(exports[task]), "--device", "cpu", "--batch_size", "2", "--input_file", "-"]
    assert predict.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" \t ")[0] for line in out] == [
        "Data: 质量很好",
        "Data: 太差了",
        "Data: 质量很好",
        "Data: 张三在北京\t工作",
        "Data: 一般",
    ]


def test_multi_line_text_arguments_print_on_one_line(exports, capsys):
    argv = ["--model_dir", str(exports["seq_cls"]), "--device", "cpu", "第一行\n第二行", "单行"]
    assert predict_chnsenticorp.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("Data: 第一行 第二行 \t Label: ")


def test_qa_jsonl_blank_line_is_an_error_naming_it(exports, tmp_path, capsys):
    item = json.dumps({"context": "长江是中国第一长河。", "question": "第一长河是什么？"}, ensure_ascii=False)
    source = tmp_path / "qa.jsonl"
    source.write_text(f"{item}\n\n{item}\n", encoding="utf-8")
    argv = ["--model_dir", str(exports["qa"]), "--device", "cpu", "--input_file", str(source)]
    assert error_of(predict.main, argv, capsys).startswith(f"--input_file {source} line 2: empty line")
    source.write_text(f"{item}\n{item}\n", encoding="utf-8")
    assert predict.main(argv) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_the_real_cli_refuses_bad_stdin_bytes(exports):
    command = [sys.executable, "deploy/predict_chnsenticorp.py", "--model_dir", str(exports["seq_cls"])]
    command += ["--device", "cpu", "--input_file", "-"]
    done = subprocess.run(command, cwd=REPO, input=b"\xff\xfe\n", capture_output=True, timeout=120)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().endswith("error: --input_file - (stdin) line 1: not UTF-8 text (byte 1 of the line)\n")


# ---------------------------------------------------------------------------------------------------- item 8


@pytest.mark.parametrize("script", [predict_chnsenticorp, predict])
def test_max_seq_length_beyond_the_export_positions_is_refused_at_start(script, exports, capsys):
    positions = TINY_ERNIE["max_position_embeddings"]
    export_dir = exports["seq_cls"]
    assert json.loads((export_dir / "export_config.json").read_text("utf-8"))["max_position_embeddings"] == positions
    argv = ["--model_dir", str(export_dir), "--device", "cpu", "--max_seq_length", str(positions + 1), "好" * 300]
    assert error_of(script.main, argv, capsys) == (
        f"--max_seq_length {positions + 1}: the model has only {positions} positions "
        f"(max_position_embeddings in {export_dir / 'export_config.json'}); use --max_seq_length {positions} or less"
    )
    argv[5] = str(positions)  # at the limit, a text longer than the table is truncated and predicted
    assert script.main(argv) == 0 and capsys.readouterr().out.count(" \t Label: ") == 1
