"""ernie1/tasks: the task interface (spec.py), the label policy (labels.py) and the fine-tune/deploy files (outputs.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.tasks import TASK_MODULES, get_task
from ernie1.tasks.labels import check_known_labels, preview, sorted_labels
from ernie1.tasks.outputs import export_config, read_export_config, save_label_list, saved_label_list
from ernie1.tasks.spec import TaskSettings, as_outputs, check_max_seq_length


def test_every_task_is_registered_under_its_export_name():
    for name in TASK_MODULES:
        task = get_task(name)
        assert task.name == name and task.model_class.startswith("Ernie")
        assert set(task.export_keys) <= set(TaskSettings.__dataclass_fields__)
    with pytest.raises(ValueError, match="unknown task 'summarize'"):
        get_task("summarize")


def test_named_splits_and_dataset_aliases_are_each_task_own():
    assert get_task("ner").paddlenlp_split("msra_ner", "dev") == ("msra_ner", "test")
    assert get_task("ner").paddlenlp_split("peoples_daily_ner", "dev") == ("peoples_daily_ner", "dev")
    assert get_task("qa").paddlenlp_split("cmrc2018", "test") == ("cmrc2018", "trial")
    assert get_task("seq_cls").paddlenlp_split("clue wsc", "train") == ("clue cluewsc2020", "train")


def test_settings_round_trip_through_the_export_config():
    settings = TaskSettings(max_seq_length=64, doc_stride=16, label_list=["0", "1"], dataset="d")
    config = export_config("qa", get_task("qa").export_settings(settings), 513)
    assert config == {
        "task": "qa",
        "input_names": ["input_ids", "token_type_ids"],
        "max_seq_length": 64,
        "doc_stride": 16,
        "max_query_length": 64,
        "n_best_size": 20,
        "max_answer_length": 30,
        "dataset": "d",
        "max_position_embeddings": 513,
    }
    back = TaskSettings.from_dict(config)
    assert (back.max_seq_length, back.doc_stride, back.label_list) == (64, 16, None)
    assert TaskSettings(label_list=["0", "1"], label_names=["neg", "pos"]).names == ["neg", "pos"]
    assert TaskSettings(label_list=["0", "1"]).names == ["0", "1"]


def test_max_seq_length_check():
    check_max_seq_length(513, 513, "--max_seq_length", "c")
    check_max_seq_length(4096, None, "--max_seq_length", "c")  # an old export without the table size
    with pytest.raises(ToolkitError) as info:
        check_max_seq_length(514, 513, "--max_seq_length", "ckpt/model_config.json")
    assert str(info.value) == (
        "--max_seq_length 514: the model has only 513 positions (max_position_embeddings in ckpt/model_config.json); "
        "use --max_seq_length 513 or less"
    )


def test_outputs_are_always_a_tuple():
    logits = np.zeros((2, 3))
    assert as_outputs(logits)[0] is logits and len(as_outputs((logits, logits))) == 2


def test_preview_caps_count_and_length():
    assert preview(["0", "1"]) == "['0', '1']"
    values = [str(i) for i in range(25)]
    assert preview(values) == "['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ... (25 in all)]"
    assert preview(["x" * 100]) == "['" + "x" * 40 + "...']"


def test_label_policy_names_the_first_unknown_label():
    assert sorted_labels(["10", "2", "1"]) == ["1", "2", "10"] and sorted_labels(["b", "a"]) == ["a", "b"]
    check_known_labels([(1, "a"), (2, None)], ["a", "b"], "--dev_file d")
    with pytest.raises(
        ToolkitError, match=r"^--dev_file d line 3: label 'c' is not one of the training labels \['a', 'b'\]$"
    ):
        check_known_labels([(1, "a"), (3, "c"), (4, "d")], ["a", "b"], "--dev_file d")


def test_label_list_file_and_export_config_errors(tmp_path):
    assert saved_label_list(tmp_path) is None
    save_label_list(tmp_path, ["B-PER", "O"])
    assert saved_label_list(tmp_path) == ["B-PER", "O"] and not list(tmp_path.glob("*.tmp"))
    (tmp_path / "label_list.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"label_list.json: expected a JSON list of label strings$"):
        saved_label_list(tmp_path)
    with pytest.raises(ToolkitError, match=r"^--model_dir d: export_config.json is missing; re-export"):
        read_export_config(tmp_path, "--model_dir d")
    (tmp_path / "export_config.json").write_bytes(b"\xff{")
    with pytest.raises(ToolkitError, match=r"export_config.json: not valid JSON \(invalid start byte\)"):
        read_export_config(tmp_path, "--model_dir d")
    (tmp_path / "export_config.json").write_text(json.dumps({"max_seq_length": 8}), encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"export_config.json: has no 'task'; re-export"):
        read_export_config(tmp_path, "--model_dir d")
