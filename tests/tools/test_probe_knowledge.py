"""tools/probe_knowledge.py: a model trained on the probe sentences beats random init, the figures repeat exactly,
every checkpoint layout gives the same figures, and mistakes are one-line errors."""

from __future__ import annotations

import json
import re

import pytest

from ernie1.common.errors import run_cli
from tests import probe_support
from tools.probe_knowledge import main

LINE = re.compile(
    r"^(?P<dir>.+): entity_exact_match=(?P<em>\d\.\d{4}) char_accuracy=(?P<ca>\d\.\d{4}) entities=(?P<n>\d+)$"
)
SCORED = probe_support.NUM_ENTITIES - probe_support.NUM_UNSCORABLE


def probe_lines(argv, capsys):
    """Run the CLI; return its stdout lines parsed as (dir, exact match, char accuracy, entities), and stderr."""
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [(m["dir"], float(m["em"]), float(m["ca"]), int(m["n"])) for m in matches], captured.err


def cli_error(argv, capsys) -> str:
    assert run_cli(main, argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", (captured.out, lines)
    return lines[0]


def test_a_checkpoint_trained_on_the_probe_sentences_beats_random_init(trained, capsys):
    assert trained.final_loss < 0.5
    lines, err = probe_lines(
        ["--conll", str(trained.conll), "--model_dir", str(trained.dygraph), "--random_init"], capsys
    )
    (name, em, ca, n), (random_name, random_em, random_ca, random_n) = lines
    assert (name, random_name) == (str(trained.dygraph), "random_init")
    assert n == random_n == SCORED
    assert em > random_em and ca > random_ca
    assert em >= 0.8 and ca >= 0.9, lines  # it memorised the cloze; random init is near 1/vocab
    assert random_ca < 0.2
    skip = "1 entity skipped (1 not one known token per character, 0 beyond --max_seq_length 128)"
    assert err.splitlines() == [f"{trained.dygraph}: {skip}", f"random_init: {skip}"]


def test_the_same_figures_twice(trained, tmp_path, capsys):
    argv = ["--conll", str(trained.conll), "--model_dir", str(trained.dygraph), "--random_init", "--batch_size", "7"]
    first, _ = probe_lines([*argv, "--json", str(tmp_path / "a.json")], capsys)
    again, _ = probe_lines([*argv, "--json", str(tmp_path / "b.json")], capsys)
    assert first == again
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


def test_every_checkpoint_layout_gives_the_same_figures(trained, capsys):
    dirs = [trained.dygraph, trained.paddlenlp, trained.static, trained.converted]
    lines, _ = probe_lines(["--conll", str(trained.conll), "--model_dir", *map(str, dirs)], capsys)
    assert [line[0] for line in lines] == [str(d) for d in dirs]
    assert len({line[1:] for line in lines}) == 1, lines


def test_json_holds_the_printed_figures(trained, tmp_path, capsys):
    path = tmp_path / "probe.json"
    lines, _ = probe_lines(
        ["--conll", str(trained.conll), "--model_dir", str(trained.dygraph), "--random_init", "--json", str(path)],
        capsys,
    )
    records = json.loads(path.read_text(encoding="utf-8"))
    assert [list(r) for r in records] == [
        [
            "model_dir",
            "entity_exact_match",
            "char_accuracy",
            "entities",
            "skipped_not_single_tokens",
            "skipped_beyond_max_seq_length",
        ]
    ] * 2
    for record, (name, em, ca, n) in zip(records, lines):
        assert (record["model_dir"], round(record["entity_exact_match"], 4), round(record["char_accuracy"], 4)) == (
            name,
            em,
            ca,
        )
        assert (record["entities"], record["skipped_not_single_tokens"], record["skipped_beyond_max_seq_length"]) == (
            n,
            1,
            0,
        )
    assert not list(tmp_path.glob(".*tmp*"))


def test_text_file_uses_the_toolkit_entity_detection(trained, tmp_path, capsys):
    from ernie1.tasks.knowledge_probe import detected_entities

    document = "。".join(text for text, _ in probe_support.PROBE_SENTENCES) + "。"
    jsonl = tmp_path / "probe.jsonl"
    jsonl.write_text(json.dumps({"content": document}, ensure_ascii=False) + "\n", encoding="utf-8")
    lines, _ = probe_lines(
        ["--text_file", str(jsonl), "--json_key", "content", "--model_dir", str(trained.dygraph), "--random_init"],
        capsys,
    )
    detected = sum(len(detected_entities(text + "。")) for text, _ in probe_support.PROBE_SENTENCES)
    assert detected >= 20
    (_, em, ca, n), (_, random_em, random_ca, random_n) = lines
    assert n == random_n and n >= detected - 2  # 火箭 (箭 is not in the vocab) may be among them
    assert em > random_em and ca > random_ca


def test_max_entities_and_max_sentences(trained, capsys):
    base = ["--conll", str(trained.conll), "--model_dir", str(trained.dygraph)]
    assert probe_lines([*base, "--max_entities", "5"], capsys)[0][0][3] == 5
    assert probe_lines([*base, "--max_sentences", "2"], capsys)[0][0][3] == 4
    lines, err = probe_lines([*base, "--max_seq_length", "8"], capsys)
    assert err.strip().endswith("beyond --max_seq_length 8)") and 0 < lines[0][3] < SCORED


def test_random_init_from_model_config_and_vocab_path(trained, capsys):
    from_dir, _ = probe_lines(
        ["--conll", str(trained.conll), "--model_dir", str(trained.dygraph), "--random_init"], capsys
    )
    alone, _ = probe_lines(
        [
            "--conll",
            str(trained.conll),
            "--random_init",
            "--model_config",
            str(trained.dygraph / "model_config.json"),
            "--vocab_path",
            str(trained.dygraph / "vocab.txt"),
        ],
        capsys,
    )
    assert alone == from_dir[1:]


def test_mistakes_are_one_line_errors(trained, tmp_path, capsys):
    conll = ["--conll", str(trained.conll)]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_error([*conll, "--model_dir", str(empty)], capsys) == (
        f"error: --model_dir {empty}: not a checkpoint directory (no model_state.pdparams, nor static_vars.pdparams "
        "+ static_name_map.json)"
    )
    assert cli_error([*conll, "--model_dir", str(trained.dygraph.parent)], capsys).endswith(
        "; it holds model_last: pass that directory"
    )
    assert cli_error(conll, capsys) == "error: nothing to probe: pass --model_dir DIR [DIR ...] and/or --random_init"
    assert cli_error([*conll, "--random_init"], capsys) == (
        "error: --random_init needs an architecture and a vocabulary: pass --model_dir, or --model_config with "
        "--vocab_path"
    )
    assert cli_error([*conll, "--model_dir", str(trained.dygraph), "--max_seq_length", "129"], capsys) == (
        f"error: --max_seq_length 129: the model has only 128 positions (max_position_embeddings in "
        f"{trained.dygraph}); use --max_seq_length 128 or less"
    )
    assert cli_error([*conll, "--text_file", "x.txt", "--random_init"], capsys) == (
        "error: argument --text_file: not allowed with argument --conll"
    )
    assert cli_error([*conll, "--random_init", "--json", str(tmp_path / "no" / "r.json")], capsys) == (
        f"error: --json {tmp_path / 'no' / 'r.json'}: no such directory {tmp_path / 'no'}"
    )
    no_entities = tmp_path / "plain.txt"
    no_entities.write_text("今天天气很好\n", encoding="utf-8")
    assert cli_error(["--text_file", str(no_entities), "--random_init"], capsys) == (
        f"error: --text_file {no_entities}: no entities in its 1 sentence(s); nothing to probe"
    )
    assert cli_error([*conll, "--random_init", "--max_entities", "0"], capsys) == (
        "error: argument --max_entities: 0 must be at least 1"
    )


@pytest.mark.parametrize("name", ["model_state.pdparams", "static_vars.pdparams"])
def test_a_truncated_weights_file_is_named(trained, tmp_path, capsys, name):
    import shutil

    source = trained.dygraph if name == "model_state.pdparams" else trained.static
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    data = (broken / name).read_bytes()
    (broken / name).write_bytes(data[: len(data) // 3])
    message = cli_error(["--conll", str(trained.conll), "--model_dir", str(broken)], capsys)
    assert message.startswith(f"error: --model_dir {broken}: {broken / name}: "), message
