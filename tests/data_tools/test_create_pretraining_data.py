import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_tools.create_pretraining_data import main
from data_tools.demo_corpus import write_demo_corpus
from ernie1.data.indexed_dataset import MMapIndexedDataset
from ernie1.data.knowledge_spans import load_knowledge_spans
from ernie1.text.document_encoder import restore_split_dimers
from ernie1.text.knowledge import ENTITY, PHRASE
from ernie1.text.tokenizer import extend_chinese_char, load_tokenizer, read_vocab_file

REPO = Path(__file__).resolve().parents[2]


def _write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def _run(vocab_path, input_path, prefix, *flags):
    argv = ["--model_name", str(vocab_path), "--tokenizer_name", "ErnieTokenizer", "--input_path", str(input_path),
            "--output_prefix", str(prefix), *flags]  # fmt: skip
    assert main(argv) == 0
    return MMapIndexedDataset(str(prefix))


@pytest.fixture(scope="module")
def news_jsonl(tmp_path_factory):
    """24 real news documents (one sentence per line) as JSON lines."""
    raw = write_demo_corpus(tmp_path_factory.mktemp("raw"), max_docs=24, split="dev")
    texts = [d.strip("\n") for p in sorted(raw.rglob("*.txt")) for d in p.read_text(encoding="utf-8").split("\n\n")]
    return _write_jsonl(tmp_path_factory.mktemp("jsonl") / "news.jsonl", texts), texts


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    return load_tokenizer(str(vocab_path))


WWM = ["--split_sentences", "--chinese", "--cn_whole_word_segment"]


def test_whole_word_marking_of_pre_segmented_text(tmp_path, vocab_path, tokenizer):
    source = _write_jsonl(tmp_path / "in.jsonl", ["通过 利用 mercer 核\n北京 大学"])
    ds = _run(vocab_path, source, tmp_path / "out", *WWM, "--cn_splited")
    assert ds.doc_idx.tolist() == [0, 2]
    assert tokenizer.convert_ids_to_tokens(ds[0].tolist()) == ["通", "##过", "利", "##用", "me", "##rc", "##er", "核"]
    assert tokenizer.convert_ids_to_tokens(ds[1].tolist()) == ["北", "##京", "大", "##学"]


def test_restore_split_dimers_keeps_original_spaces():
    # "hello world" segmented and joined with " " is "hello   world" (the space itself is a word)
    assert restore_split_dimers("hello   world".split(" "), " ") == ["hello", "", " ", "world"]
    assert restore_split_dimers(["a", "", "", "", "", "b"], " ") == ["a", "", " ", "", " ", "b"]


def test_plain_ids_match_the_tokenizer(tmp_path, vocab_path, tokenizer, news_jsonl, capsys):
    source, texts = news_jsonl
    ds = _run(vocab_path, source, tmp_path / "plain", "--split_sentences", "--chinese")
    expected = [[line.strip() for line in text.split("\n") if line.strip()] for text in texts]
    assert len(ds.doc_idx) - 1 == len(texts)
    assert ds.doc_idx.tolist() == np.cumsum([0] + [len(sentences) for sentences in expected]).tolist()
    flat = [sentence for sentences in expected for sentence in sentences]
    for index in (0, 1, len(flat) // 2, len(flat) - 1):
        reference = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(flat[index]))
        assert ds[index].tolist() == reference
    assert ds.ids.dtype == np.uint16
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith(f"create_pretraining_data: 24 docs, {len(flat)} sentences, {len(ds.ids)} tokens, ")
    prefix = tmp_path / "plain"
    assert summary.endswith(f"1 workers), 0 lines skipped; wrote {prefix}_ids.npy (uint16), {prefix}_idx.npz")


def test_without_split_sentences_each_document_is_one_sentence(tmp_path, vocab_path, tokenizer):
    source = _write_jsonl(tmp_path / "in.jsonl", ["第一句。\n第二句。", "另一个文档"])
    ds = _run(vocab_path, source, tmp_path / "out")
    assert ds.doc_idx.tolist() == [0, 1, 2]
    assert tokenizer.convert_ids_to_tokens(ds[0].tolist()) == list("第一句。第二句。")


def test_append_eos_adds_sep_after_each_document(tmp_path, vocab_path, tokenizer):
    source = _write_jsonl(tmp_path / "in.jsonl", ["第一句。\n第二句。", "另一个文档"])
    ds = _run(vocab_path, source, tmp_path / "out", "--split_sentences", "--chinese", "--append_eos")
    assert [tokenizer.convert_ids_to_tokens(ds[i].tolist()) for i in range(len(ds))] == [
        list("第一句。"),
        list("第二句。") + ["[SEP]"],
        list("另一个文档") + ["[SEP]"],
    ]


def test_workers_and_segmenters_give_identical_files(tmp_path, vocab_path, news_jsonl):
    source, _texts = news_jsonl
    outputs = []
    for name, flags in [("w1", []), ("w2", ["--workers", "2"]), ("rjieba", ["--cn_seg_func", "rjieba"])]:
        _run(vocab_path, source, tmp_path / name, *WWM, *flags)
        outputs.append([(tmp_path / f"{name}{suffix}").read_bytes() for suffix in ("_ids.npy", "_idx.npz")])
    assert outputs[0] == outputs[1] == outputs[2]


def test_wwm_marks_words_and_uses_the_extended_vocab(tmp_path, vocab_path, tokenizer, news_jsonl):
    source, _texts = news_jsonl
    lines = read_vocab_file(vocab_path)  # not splitlines(): the vocab has U+2028 / U+0085 tokens
    # Drop the `##<CJK>` entries and pad past 2**16 - 7321 so the extension needs int32 ids.
    kept = [t for t in lines if not (t.startswith("##") and 0x4E00 <= ord(t[2:3] or "a") <= 0x9FA5 and len(t) == 3)]
    kept += [f"[padding{i}]" for i in range(60000 - len(kept))]
    small_vocab = tmp_path / "vocab.txt"
    small_vocab.write_text("\n".join(kept) + "\n", encoding="utf-8")
    ds = _run(small_vocab, source, tmp_path / "ext", *WWM)
    assert ds.ids.dtype == np.int32
    extended = load_tokenizer(str(small_vocab))
    assert extend_chinese_char(extended) == 7321
    assert int(ds.ids.max()) >= 60000  # `##<CJK>` ids live in the extension
    reference = _run(vocab_path, source, tmp_path / "ref", *WWM)
    # Same token strings with either vocab: only the ids of `##` chars differ.
    for index in (0, 5, len(ds) - 1):
        assert extended.convert_ids_to_tokens(ds[index].tolist()) == tokenizer.convert_ids_to_tokens(
            reference[index].tolist()
        )
    tokens = tokenizer.convert_ids_to_tokens(reference.ids[:2000].tolist())
    assert sum(t.startswith("##") for t in tokens) > 500


def test_knowledge_spans_are_written_and_align_with_tokens(tmp_path, vocab_path, tokenizer, news_jsonl, capsys):
    source, texts = news_jsonl
    entity_dict = tmp_path / "entities.txt"
    entity_dict.write_text("知识产权\n", encoding="utf-8")
    assert "知识产权" in "".join(texts)
    prefix = tmp_path / "kn"
    flags = ["--knowledge_spans", "--entity_dict", str(entity_dict), "--cn_seg_func", "rjieba"]  # jieba.posseg is slow
    ds = _run(vocab_path, source, prefix, *WWM, *flags)
    summary = capsys.readouterr().out.strip()
    assert summary.endswith(f"_idx.npz, {prefix}_knowledge.npz")
    spans = load_knowledge_spans(str(prefix))
    assert len(spans) == len(ds)
    per_1000 = [1000 * int((spans.kinds == kind).sum()) / len(ds.ids) for kind in (ENTITY, PHRASE)]
    assert (
        f", {len(spans.starts)} knowledge spans (entity spans per 1,000 tokens: {per_1000[0]:.1f}, "
        f"phrase spans per 1,000 tokens: {per_1000[1]:.1f}), "
    ) in summary
    assert min(per_1000) > 5  # news text: both kinds are found
    assert len(spans.starts) > len(ds)  # several spans per sentence on news text
    found_user_entity = False
    for sentence in range(len(ds)):
        tokens = [t.removeprefix("##") for t in tokenizer.convert_ids_to_tokens(ds[sentence].tolist())]
        for start, end, kind in zip(*spans.spans_of_sentence(sentence)):
            assert 0 <= start < end <= len(tokens)
            found_user_entity |= kind == ENTITY and "".join(tokens[start:end]) == "知识产权"
    assert found_user_entity


def test_directory_input_reads_sorted_jsonl_files_only(tmp_path, vocab_path, tokenizer):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _write_jsonl(tmp_path / "in" / "sub" / "b.jsonl", ["第二个文件"])
    _write_jsonl(tmp_path / "in" / "a.jsonl", ["第一个文件"])
    (tmp_path / "in" / "notes.txt").write_text("不读这个", encoding="utf-8")
    ds = _run(vocab_path, tmp_path / "in", tmp_path / "out")
    assert [tokenizer.convert_ids_to_tokens(ds[i].tolist()) for i in range(2)] == [
        list("第一个文件"),
        list("第二个文件"),
    ]


@pytest.mark.slow
def test_seed_readme_commands_end_to_end(tmp_path, vocab_path):
    """The seed README's two commands, run as scripts with local paths, the demo vocab and --workers 2."""
    raw = write_demo_corpus(tmp_path / "clue_corpus_small_14g", max_docs=30, split="test")
    jsonl = tmp_path / "clue_corpus_small_14g.jsonl"
    prefix = tmp_path / "clue_corpus_small_14g_20220104"
    commands = [
        [sys.executable, "data_tools/trans_to_json.py", "--input_path", str(raw), "--output_path", str(jsonl),
         "--workers", "2"],
        [sys.executable, "-u", "data_tools/create_pretraining_data.py", "--model_name", str(vocab_path),
         "--tokenizer_name", "ErnieTokenizer", "--input_path", str(jsonl), "--split_sentences", "--chinese",
         "--cn_whole_word_segment", "--cn_seg_func", "jieba", "--output_prefix", str(prefix), "--workers", "2",
         "--log_interval", "10000"],
    ]  # fmt: skip
    for command in commands:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    ds = MMapIndexedDataset(str(prefix))
    assert len(ds.doc_idx) - 1 == len(jsonl.read_text(encoding="utf-8").splitlines())
    assert len(ds) > 30 and ds.ids.dtype == np.uint16


def test_knowledge_spans_toy_example_from_the_docs(tmp_path, vocab_path):
    source = _write_jsonl(tmp_path / "in.jsonl", ["江泽民在北京大学\n宣布三个新政策"])
    ds = _run(vocab_path, source, tmp_path / "toy", *WWM, "--knowledge_spans")  # jieba.posseg tags
    assert ds.sizes.tolist() == [8, 7]
    with np.load(tmp_path / "toy_knowledge.npz") as data:
        assert data["sent_ptr"].tolist() == [0, 2, 3]
        assert data["starts"].tolist() == [0, 4, 2]
        assert data["ends"].tolist() == [3, 8, 7]
        assert data["kinds"].tolist() == [1, 1, 2]
