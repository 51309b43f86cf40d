"""finetune/common.py: argument precedence, config.yml, local readers, tokenizer/model loading, export checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ernie1.common.errors import ToolkitError, run_cli
from finetune import common
from finetune.common import (
    CONFIG_PATH,
    apply_minimum_eval_times,
    build_argument_parser,
    load_model_for_task,
    load_task_config,
    load_tokenizer_for_finetune,
    parse_finetune_args,
    read_examples,
    resolve_last_checkpoint,
    typed_dests,
)
from tests.finetune.tiny_checkpoint import write_tiny_pretraining_checkpoint

BASE = ["--model_name_or_path", "ckpt", "--output_dir", "out"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, vocab_path):
    return write_tiny_pretraining_checkpoint(tmp_path_factory.mktemp("tiny_ckpt") / "model_last", vocab_path)


# ---------------------------------------------------------------------------------------------------- arguments


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
    assert sorted(common.known_datasets("seq_cls")) == sorted(
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


# ---------------------------------------------------------------------------------------------------- local files


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_with_chnsenticorp_header(tmp_path):
    path = write(tmp_path / "train.tsv", "label\ttext_a\n1\t很好\n0\t太差\n")
    assert read_examples(path) == [
        {"line": 2, "text": "很好", "label": "1"},
        {"line": 3, "text": "太差", "label": "0"},
    ]


def test_test_tsv_with_qid_header_has_no_labels(tmp_path):
    path = write(tmp_path / "test.tsv", "qid\ttext_a\n0\t不错\n")
    assert read_examples(path) == [{"line": 2, "text": "不错"}]


def test_headerless_rows_by_position(tmp_path):
    path = write(tmp_path / "pairs.tsv", "a\tb\t1\nc\td\t0\n")
    assert read_examples(path)[1] == {"text": "c", "text_b": "d", "label": "0", "line": 2}
    single = write(tmp_path / "texts.tsv", "只有文本\n\n另一条\n")
    assert [e["text"] for e in read_examples(single)] == ["只有文本", "另一条"]


def test_csv_quoting_and_jsonl_keys(tmp_path):
    csv_path = write(tmp_path / "d.csv", 'sentence1,sentence2,label\n"好,很好",还行,yes\n')
    assert read_examples(csv_path) == [{"line": 2, "text": "好,很好", "text_b": "还行", "label": "yes"}]
    jsonl = write(
        tmp_path / "d.jsonl", '{"sentence": "好", "label": 1}\n\n{"text_a": "差", "text_b": "x", "label": 0}\n'
    )
    assert read_examples(jsonl) == [
        {"line": 1, "text": "好", "label": "1"},
        {"line": 3, "text": "差", "text_b": "x", "label": "0"},
    ]


@pytest.mark.parametrize(
    "name, content, fmt, message",
    [
        ("empty.tsv", "", None, "--train_file {path}: the file is empty"),
        ("blank.tsv", "\n\n", None, "--train_file {path}: no examples in the file"),
        (
            "wide.tsv",
            "a\tb\tc\td\n",
            None,
            "--train_file {path}: line 1: 4 columns; expected text[, text_b], label or a header row",
        ),
        ("short.tsv", "label\ttext_a\n1\n", None, "--train_file {path}: line 2: 1 columns, but the header has 2"),
        (
            "nolabel.tsv",
            "label\tqid\n1\t2\n",
            None,
            "--train_file {path}: the header ['label', 'qid'] has no text column; name one of text, text_a, sentence, sentence1, premise, query",
        ),
        (
            "bad.jsonl",
            '{"text": 1}\n{oops\n',
            None,
            "--train_file {path}: line 2: not valid JSON (Expecting property name enclosed in double quotes)",
        ),
        (
            "notext.jsonl",
            '{"label": 1}\n',
            None,
            "--train_file {path}: line 1: no text field; use one of text, text_a, sentence, sentence1, premise, query",
        ),
        (
            "data.xyz",
            "a\t1\n",
            None,
            "--train_file {path}: cannot tell the format from the suffix; pass --file_format ",
        ),
        ("data.xyz", "a\t1\n", "parquet", "--file_format parquet: unknown; expected one of "),
    ],
)
def test_bad_local_files_are_one_line_errors(tmp_path, name, content, fmt, message):
    path = write(tmp_path / name, content)
    with pytest.raises(ToolkitError) as info:
        read_examples(path, fmt, flag="--train_file")
    assert str(info.value).startswith(message.format(path=path))
    assert "\n" not in str(info.value)


def test_registered_reader_is_found_by_suffix(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "READERS", dict(common.READERS))
    monkeypatch.setattr(common, "FORMAT_BY_SUFFIX", dict(common.FORMAT_BY_SUFFIX))
    common.register_reader("upper", suffixes=(".up",))(lambda path: [{"text": path.read_text().upper(), "line": 1}])
    assert read_examples(write(tmp_path / "x.up", "ab")) == [{"text": "AB", "line": 1}]


# ---------------------------------------------------------------------------------------------------- tokenizer, model


def test_pretraining_tokenizer_loads_without_added_wordpiece_tokens(tiny_checkpoint, tmp_path):
    import shutil

    tokenizer = load_tokenizer_for_finetune(str(tiny_checkpoint))
    assert len(tokenizer) == 21128 and tokenizer.added_tokens_encoder == {}
    # A tokenizer saved after vocab extension via add_tokens carries `##` entries in added_tokens.json: drop them.
    extended = tmp_path / "extended"
    shutil.copytree(tiny_checkpoint, extended)
    (extended / "added_tokens.json").write_text(json.dumps({"##𠀀": 21128, "##𠀁": 21129}), encoding="utf-8")
    loaded = load_tokenizer_for_finetune(str(extended))
    assert len(loaded) == 21128 and not [t for t in loaded.added_tokens_encoder if t.startswith("##")]
    text = "东西不错，总之还算满意。Good"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_tokenizer_errors(tmp_path, monkeypatch):
    with pytest.raises(
        ToolkitError, match=r"^--model_name_or_path .*: no vocab.txt in this directory; pass --tokenizer_name"
    ):
        load_tokenizer_for_finetune(str(tmp_path))
    with pytest.raises(ToolkitError, match=r"^--model_name_or_path ./missing: no such directory$"):
        load_tokenizer_for_finetune("./missing")

    from paddlenlp.transformers import AutoTokenizer

    def offline(*args, **kwargs):
        raise OSError("Can't load the model for 'ernie-1.0'")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(ToolkitError) as info:
        load_tokenizer_for_finetune("ernie-1.0")
    assert str(info.value) == (
        "--model_name_or_path ernie-1.0: cannot load it from the paddlenlp hub (Can't load the model for 'ernie-1.0'); "
        "offline, pass a local checkpoint directory such as the pretraining output's model_last "
        "(model_state.pdparams, model_config.json, vocab.txt)"
    )


def test_classifier_loads_encoder_weights_from_pretraining_checkpoint(tiny_checkpoint):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    pretrained = paddle.load(str(tiny_checkpoint / "model_state.pdparams"))
    model = load_model_for_task(ErnieForSequenceClassification, str(tiny_checkpoint), num_classes=3)
    state = model.state_dict()
    key = "ernie.encoder.layers.1.linear2.weight"
    assert np.array_equal(state[key].numpy(), pretrained[key].numpy())
    assert model.num_labels == 3


def test_converted_state_dict_file_with_config_dir(tiny_checkpoint, tmp_path):
    import paddle
    from paddlenlp.transformers import ErnieForSequenceClassification

    # The static->dygraph converter writes a bare state dict; the encoder may come without the `ernie.` prefix.
    pretrained = paddle.load(str(tiny_checkpoint / "model_state.pdparams"))
    bare = {k[len("ernie.") :]: v for k, v in pretrained.items() if k.startswith("ernie.")}
    converted = tmp_path / "ernie-1.0_converted.pdparams"
    paddle.save(bare, str(converted))
    model = load_model_for_task(
        ErnieForSequenceClassification, str(converted), config_name=str(tiny_checkpoint), num_classes=2
    )
    key = "encoder.layers.0.self_attn.q_proj.weight"
    assert np.array_equal(model.state_dict()["ernie." + key].numpy(), bare[key].numpy())


def test_model_loading_errors(tiny_checkpoint, tmp_path):
    from paddlenlp.transformers import ErnieForSequenceClassification

    with pytest.raises(ToolkitError, match=r"no model_state.pdparams in this directory$"):
        load_model_for_task(ErnieForSequenceClassification, str(tmp_path))
    (tmp_path / "model_state.pdparams").write_bytes((tiny_checkpoint / "model_state.pdparams").read_bytes())
    with pytest.raises(ToolkitError, match=r"no config.json or model_config.json; pass --config_name <dir with it>$"):
        load_model_for_task(ErnieForSequenceClassification, str(tmp_path))
    with pytest.raises(ToolkitError, match=r"^--model_name_or_path ./nope: no such checkpoint directory"):
        load_model_for_task(ErnieForSequenceClassification, "./nope")


def test_export_requires_max_seq_length(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="max_seq_length"):
        common.export_model(object(), object(), str(tmp_path), "seq_cls", extra={})


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


def test_checkpoint_saved_by_pretraining_with_extended_vocab_loads_for_finetuning(tmp_path, vocab_path):
    """The real pretraining writer: `##` extension in the tokenizer, a larger embedding, a minimal model_config.json."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieTokenizer

    checkpoint = pytest.importorskip("ernie1.pretrain.checkpoint")
    model_module = pytest.importorskip("ernie1.pretrain.model")
    tokenization = pytest.importorskip("ernie1.text.tokenizer")

    # A vocab without the `##<CJK>` lines, so that the extension really adds tokens (as with the ERNIE vocabs).
    lines = vocab_path.read_text(encoding="utf-8").splitlines()
    reduced = [t for t in lines if not (t.startswith("##") and len(t) == 3 and "\u4e00" <= t[2] <= "\u9fa5")]
    (tmp_path / "vocab.txt").write_text("\n".join(reduced) + "\n", encoding="utf-8")
    tokenizer = ErnieTokenizer(str(tmp_path / "vocab.txt"))
    base_size = len(tokenizer)
    added = tokenization.extend_chinese_char(tokenizer)
    assert added == 7321 and len(tokenizer) == base_size + added
    config = ErnieConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    paddle.seed(5)
    pretrained = ErnieForPretraining(config)
    target = tmp_path / "output" / "model_last"
    checkpoint.save_checkpoint(
        str(target), {"model": pretrained}, {"global_step": 1}, tokenizer, model_module.model_config_dict(config)
    )

    loaded = load_tokenizer_for_finetune(str(target))
    assert len(loaded) == base_size and not any(t.startswith("##") for t in loaded.added_tokens_encoder)
    ids = loaded("东西不错，总之还算满意")["input_ids"]
    assert max(ids) < base_size and loaded.convert_ids_to_tokens(ids[1:3]) == ["东", "西"]
    model = load_model_for_task(ErnieForSequenceClassification, str(target), num_classes=2)
    key = "ernie.embeddings.word_embeddings.weight"
    assert np.array_equal(model.state_dict()[key].numpy(), pretrained.state_dict()[key].numpy())
