"""deploy/predict.py: dispatch by the task in export_config.json (seq_cls, ner, qa) over tiny exported models."""

from __future__ import annotations

import json

import pytest

from deploy.predict import main
from deploy.predictor import ExportedModel
from ernie1.common.errors import ToolkitError, run_cli
from tests.finetune.tiny_checkpoint import write_tiny_pretraining_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("predict") / "model_last", vocab_path)


def export(checkpoint, tmp_path, model_cls, task, extra, **kwargs):
    import paddle

    from finetune.export import export_model
    from finetune.loading import load_model_for_task, load_tokenizer_for_finetune

    paddle.seed(11)
    model = load_model_for_task(model_cls, str(checkpoint), **kwargs)
    tokenizer = load_tokenizer_for_finetune(str(checkpoint))
    export_dir = export_model(model, tokenizer, str(tmp_path), task, extra)
    model.eval()
    return model, export_dir


def test_seq_cls_lines_match_predict_chnsenticorp(checkpoint, tmp_path, capsys):
    from paddlenlp.transformers import ErnieForSequenceClassification

    from deploy import predict_chnsenticorp

    extra = {"max_seq_length": 32, "label_list": ["0", "1"], "label_names": ["negative", "positive"]}
    _, export_dir = export(checkpoint, tmp_path, ErnieForSequenceClassification, "seq_cls", extra, num_classes=2)
    texts = ["质量很好", "太差了，不推荐"]
    assert main(["--model_dir", str(export_dir), "--device", "cpu", *texts]) == 0
    generic = capsys.readouterr().out
    predict_chnsenticorp.main(["--model_dir", str(export_dir), "--device", "cpu", *texts])
    assert generic == capsys.readouterr().out and generic.count("\t Label: ") == 2


def test_ner_entities_follow_dygraph_argmax(checkpoint, tmp_path, capsys):
    import paddle
    from paddlenlp.transformers import ErnieForTokenClassification

    from ernie1.tasks.ner import decode_entities, encode_words, words_of_text

    labels = ["B-LOC", "I-LOC", "B-PER", "I-PER", "O"]
    extra = {"max_seq_length": 16, "label_list": labels}
    model, export_dir = export(
        checkpoint, tmp_path, ErnieForTokenClassification, "ner", extra, num_classes=len(labels)
    )
    texts = ["张三在北京工作", "李四 去了 上海浦东新区和杭州西湖区"]  # the second is cut at 16 tokens
    assert main(["--model_dir", str(export_dir), "--device", "cpu", "--batch_size", "1", *texts]) == 0
    lines = capsys.readouterr().out.splitlines()
    exported = ExportedModel.load(str(export_dir), device="cpu")
    for text, line in zip(texts, lines):
        words = words_of_text(text)
        feature = encode_words(words, exported.tokenizer, 16)
        ids = paddle.to_tensor([feature.input_ids])
        with paddle.no_grad():
            logits = model(ids, paddle.zeros_like(ids)).numpy()[0]
        expected = ", ".join(
            f"{e['type']}:{e['text']}" for e in decode_entities(words, logits, feature.word_ids, labels)
        )
        assert line == f"Data: {text} \t Entities: {expected}"


def test_qa_answers_are_context_spans_equal_to_dygraph(checkpoint, tmp_path, capsys):
    import paddle
    from paddlenlp.transformers import ErnieForQuestionAnswering

    from ernie1.tasks.qa import QaExample, build_features, extract_answers

    extra = {"max_seq_length": 32, "doc_stride": 8, "max_query_length": 8, "n_best_size": 5, "max_answer_length": 6}
    model, export_dir = export(checkpoint, tmp_path, ErnieForQuestionAnswering, "qa", extra)
    items = [
        {
            "context": "北京是中华人民共和国的首都，也是全国的政治和文化中心，历史悠久，名胜古迹很多。",
            "question": "中国的首都是哪里？",
        },
        {"context": "长江是中国第一长河。", "question": "第一长河是什么？"},
    ]
    source = tmp_path / "qa.jsonl"
    source.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in items), encoding="utf-8")
    assert main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", str(source)]) == 0
    lines = capsys.readouterr().out.splitlines()

    exported = ExportedModel.load(str(export_dir), device="cpu")
    examples = [QaExample(str(i), item["question"], item["context"]) for i, item in enumerate(items)]
    features = build_features(examples, exported.tokenizer, 32, 8, 8)
    assert len(features) > len(items)  # the first context needs several windows
    starts, ends = [], []
    for feature in features:
        ids = paddle.to_tensor([feature.input_ids])
        with paddle.no_grad():
            start, end = model(ids, paddle.to_tensor([feature.token_type_ids]))
        starts.append(start.numpy()[0])
        ends.append(end.numpy()[0])
    expected = extract_answers([e.context for e in examples], features, starts, ends, 5, 6)
    for item, answer, line in zip(items, expected, lines):
        assert line == f"Question: {item['question']} \t Answer: {answer['text']}"
        assert answer["text"] in item["context"]


def test_qa_input_errors(checkpoint, tmp_path):
    from paddlenlp.transformers import ErnieForQuestionAnswering

    _, export_dir = export(checkpoint, tmp_path, ErnieForQuestionAnswering, "qa", {"max_seq_length": 32})
    with pytest.raises(ToolkitError, match=r"^qa needs both --context and --question$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "--context", "文本"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "c"}\n', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"bad.jsonl line 1: needs 'context' and 'question'$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "--input_file", str(bad)])


def test_unknown_task_and_no_texts(checkpoint, tmp_path, capsys):
    from paddlenlp.transformers import ErnieForSequenceClassification

    extra = {"max_seq_length": 32, "label_list": ["a", "b"]}
    _, export_dir = export(checkpoint, tmp_path, ErnieForSequenceClassification, "seq_cls", extra, num_classes=2)
    assert run_cli(main, ["--model_dir", str(export_dir), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == "error: no texts to predict; pass them as arguments or with --input_file\n"
    config = json.loads((export_dir / "export_config.json").read_text(encoding="utf-8"))
    (export_dir / "export_config.json").write_text(json.dumps({**config, "task": "summarize"}), encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"unknown task 'summarize' in export_config.json$"):
        main(["--model_dir", str(export_dir), "--device", "cpu", "x"])
