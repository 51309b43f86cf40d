import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from data_tools import inspect_samples
from ernie1.common.errors import run_cli
from ernie1.data.masking import MaskingVocab
from ernie1.data.sample_view import describe_sample, render_sample
from ernie1.text.cjk import cjk_extension_tokens
from ernie1.text.knowledge import ENTITY

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "哈", "尔", "滨", "冰", "雪", "##尔"]


@pytest.fixture()
def data_dir(tiny_prefix, tmp_path):
    """A private copy of the tiny corpus: the CLI writes its index-map cache next to the data."""
    for suffix in ("_ids.npy", "_idx.npz"):
        shutil.copy(tiny_prefix + suffix, tmp_path / ("tiny" + suffix))
    return tmp_path


def test_render_marks_masked_runs():
    vocab = MaskingVocab.from_tokens(TOKENS + cjk_extension_tokens(TOKENS), len(TOKENS))
    sample = {
        "input_ids": np.array([2, 4, 4, 7, 8, 3, 9, 5, 3]),
        "token_type_ids": np.array([0, 0, 0, 0, 0, 0, 1, 1, 1]),
        "masked_positions": np.array([1, 2, 3, 7]),
        "masked_labels": np.array([5, 6, 7, 5]),
        "sop_label": np.array(1),
        "masking_level": "word",
    }
    assert render_sample(sample, vocab) == ("[CLS] ⟦哈 尔 滨 ⇒ [MASK] [MASK] 滨⟧ 冰 [SEP] 雪 ⟦哈 ⇒ 哈⟧ [SEP]")
    assert describe_sample(4, "valid", sample, vocab).splitlines()[0] == (
        "--- valid sample 4: masking_level=word sop_label=1 (swapped: B precedes A in the text), 9 tokens, 4 predicted"
    )


def test_prints_requested_samples(data_dir, vocab_path, capsys):
    argv = ["--input_dir", str(data_dir), "--vocab", str(vocab_path), "--num_samples", "3", "--start", "2"]
    assert inspect_samples.main(argv + ["--max_seq_len", "64", "--split_ratio", "1,1,0"]) == 0
    out = capsys.readouterr().out
    headers = re.findall(
        r"^--- train sample (\d+): masking_level=word sop_label=([01]) .*, (\d+) tokens, (\d+) predicted$",
        out,
        flags=re.M,
    )
    assert [int(h[0]) for h in headers] == [2, 3, 4]
    assert all(int(tokens) <= 64 and int(predicted) >= 1 for _, _, tokens, predicted in headers)
    bodies = [line for line in out.splitlines() if not line.startswith("---")]
    assert len(bodies) == 3 and all(body.startswith("[CLS] ") and body.endswith(" [SEP]") for body in bodies)
    assert sum(body.count("⟦") for body in bodies) >= 3
    # The index-map cache went next to the (copied) data.
    assert list(Path(data_dir).glob("tiny_train_indexmap_*.npy"))


def test_model_name_directory_and_binary_head_false(data_dir, vocab_path, tmp_path, capsys):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(vocab_path, model_dir / "vocab.txt")
    argv = ["--input_dir", str(data_dir / "tiny"), "--model_name", str(model_dir), "--binary_head", "false"]
    assert inspect_samples.main(argv + ["--num_samples", "2", "--max_seq_len", "32", "--masking_level", "char"]) == 0
    out = capsys.readouterr().out
    assert out.count("masking_level=char sop_label=0 (segment A only)") == 2
    assert all(line.count("[SEP]") == 1 for line in out.splitlines() if not line.startswith("---"))


def test_errors_are_one_line(data_dir, vocab_path, capsys):
    base = ["--input_dir", str(data_dir), "--vocab", str(vocab_path)]
    assert run_cli(inspect_samples.main, base + ["--split", "test"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: --split test: this split has no usable document with --split_ratio 949,50,1; pick another split or "
        "give it a larger share"
    )
    assert run_cli(inspect_samples.main, base + ["--masking_level", "entity"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --masking_level entity: phrase/entity masking needs knowledge spans (")
    assert "--knowledge_spans" in err
    assert run_cli(inspect_samples.main, base + ["--num_samples", "0"]) == 2
    assert capsys.readouterr().err == "error: --num_samples must be >= 1, got 0\n"
    assert run_cli(inspect_samples.main, base + ["--masked_lm_prob", "1.5"]) == 2
    assert capsys.readouterr().err == "error: --masked_lm_prob must be in [0, 1), got 1.5\n"
    missing = ["--input_dir", str(data_dir), "--vocab", str(data_dir / "nope.txt")]
    assert run_cli(inspect_samples.main, missing) == 2
    assert capsys.readouterr().err == f"error: --vocab {data_dir / 'nope.txt'}: vocabulary file not found\n"


def test_render_labels_the_knowledge_spans():
    from ernie1.data.masking import MaskedSample

    vocab = MaskingVocab.from_tokens(TOKENS + cjk_extension_tokens(TOKENS), len(TOKENS))
    sample = {
        "input_ids": np.array([2, 4, 4, 4, 4, 3, 9, 5, 3]),
        "token_type_ids": np.zeros(9, int),
        "masked_positions": np.array([1, 2, 3, 4, 7]),
        "masked_labels": np.array([5, 6, 7, 8, 5]),
        "sop_label": np.array(0),
        "masking_level": "entity",
    }
    empty = np.zeros(0, np.int64)
    details = MaskedSample(sample["input_ids"], sample["masked_positions"], empty, np.array([1]), np.array([4]))
    # The entity 哈尔滨 is its own run, even next to the masked word 冰.
    assert render_sample(sample, vocab, details) == (
        "[CLS] ⟦entity: 哈 尔 滨 ⇒ [MASK] [MASK] [MASK]⟧ ⟦冰 ⇒ [MASK]⟧ [SEP] 雪 ⟦哈 ⇒ 哈⟧ [SEP]"
    )
    assert describe_sample(0, "train", sample, vocab, details, step=3).splitlines()[0] == (
        "--- train sample 0 (read at step 3): masking_level=entity sop_label=0 (segment A only), 9 tokens, "
        "5 predicted (3 in 1 whole entity span, 2 in words)"
    )


def test_entity_level_samples_mask_their_entities(data_dir, vocab_path, capsys):
    """With a knowledge file, entity-level samples show whole entity spans masked first, labelled `entity:`."""
    from ernie1.data.indexed_dataset import MMapIndexedDataset
    from ernie1.data.knowledge_spans import KnowledgeSpansWriter
    from tests import support

    indexed = MMapIndexedDataset(str(data_dir / "tiny"))
    vocab = MaskingVocab.from_vocab_file(str(vocab_path))
    knowledge = support.synthetic_knowledge(indexed, vocab, every=4)
    writer = KnowledgeSpansWriter(str(data_dir / "tiny"))
    entity_texts = set()
    for sentence in range(len(indexed)):
        starts, ends, kinds = knowledge.spans_of_sentence(sentence)
        writer.add_sentence(starts, ends, kinds)
        tokens = vocab.decode(vocab.restore(np.asarray(indexed[sentence], np.int64)))
        entity_texts |= {" ".join(tokens[a:b]) for a, b, k in zip(starts, ends, kinds) if k == ENTITY}
    writer.finalize()
    argv = ["--input_dir", str(data_dir), "--vocab", str(vocab_path), "--num_samples", "5", "--max_seq_len", "64"]
    assert inspect_samples.main(argv + ["--masking_level", "entity", "--split_ratio", "1,1,0"]) == 0
    out = capsys.readouterr().out
    headers = re.findall(r"predicted \((\d+) in (\d+) whole entity spans?, (\d+) in words\)$", out, flags=re.M)
    bodies = [line for line in out.splitlines() if not line.startswith("---")]
    assert len(headers) == len(bodies) == 5
    runs = [re.findall(r"⟦entity: ([^⇒]*) ⇒", body) for body in bodies]
    assert sum(len(found) for found in runs) >= 5
    for (span_tokens, spans, _), found in zip(headers, runs):
        assert len(found) == int(spans) and sum(len(text.split()) for text in found) == int(span_tokens)
        # An entity span, or the part of one that truncation kept at a segment's edge.
        assert all(any(f" {text} " in f" {entity} " for entity in entity_texts) for text in found)
    assert sum(text in entity_texts for found in runs for text in found) >= 5
