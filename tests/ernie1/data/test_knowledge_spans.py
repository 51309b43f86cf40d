import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data.indexed_dataset import IndexedDatasetWriter
from ernie1.data.knowledge_spans import KnowledgeSpansWriter, load_knowledge_spans
from ernie1.text.knowledge import ENTITY, PHRASE
from tests import support


def _write_prefix(tmp_path, lengths):
    prefix = str(tmp_path / "corpus")
    writer = IndexedDatasetWriter(prefix, np.uint16)
    writer.add_document([[1] * n for n in lengths])
    writer.finalize()
    return prefix


def test_writer_reader_roundtrip(tmp_path):
    prefix = _write_prefix(tmp_path, [5, 3, 8])
    writer = KnowledgeSpansWriter(prefix)
    writer.add_sentence([0, 2], [2, 5], [ENTITY, PHRASE])
    writer.add_sentence([], [], [])
    writer.add_sentence([6], [8], [ENTITY])
    writer.finalize()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus_ids.npy", "corpus_idx.npz", "corpus_knowledge.npz"]
    with np.load(prefix + "_knowledge.npz") as data:
        assert data["sent_ptr"].tolist() == [0, 2, 2, 3]
        assert data["sent_ptr"].dtype == np.int64
        assert (data["starts"].dtype, data["ends"].dtype, data["kinds"].dtype) == (np.int32, np.int32, np.uint8)
    spans = load_knowledge_spans(prefix)
    assert len(spans) == 3
    starts, ends, kinds = spans.spans_of_sentence(0)
    assert (starts.tolist(), ends.tolist(), kinds.tolist()) == ([0, 2], [2, 5], [1, 2])
    assert [a.tolist() for a in spans.spans_of_sentence(1)] == [[], [], []]
    assert [a.tolist() for a in spans.spans_of_sentence(2)] == [[6], [8], [1]]


def test_abort_leaves_nothing(tmp_path):
    writer = KnowledgeSpansWriter(str(tmp_path / "corpus"))
    writer.add_sentence([0], [2], [ENTITY])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_missing_file_gives_none(tmp_path):
    assert load_knowledge_spans(str(tmp_path / "nothing")) is None


def test_sentence_count_mismatch(tmp_path):
    prefix = _write_prefix(tmp_path, [5, 3])
    writer = KnowledgeSpansWriter(prefix)
    writer.add_sentence([0], [2], [ENTITY])
    writer.finalize()
    with pytest.raises(ToolkitError) as error:
        load_knowledge_spans(prefix)
    assert str(error.value) == (
        f"{prefix}_knowledge.npz: spans for 1 sentences but the indexed dataset has 2; the files do not belong "
        "together (re-run create_pretraining_data.py --knowledge_spans)"
    )


def test_span_past_sentence_end(tmp_path):
    prefix = _write_prefix(tmp_path, [5, 3])
    writer = KnowledgeSpansWriter(prefix)
    writer.add_sentence([0], [2], [ENTITY])
    writer.add_sentence([1], [4], [PHRASE])
    writer.finalize()
    with pytest.raises(ToolkitError, match="a span ends past its sentence"):
        load_knowledge_spans(prefix)
    assert len(load_knowledge_spans(prefix, sentence_lengths=np.array([5, 4]))) == 2


def test_corrupt_file(tmp_path):
    prefix = str(tmp_path / "corpus")
    np.savez(prefix + "_knowledge.npz", sent_ptr=np.array([0, 1]), starts=np.array([0]))
    with pytest.raises(ToolkitError, match=r"missing arrays? ends, kinds \(expected sent_ptr, starts, ends, kinds\)$"):
        load_knowledge_spans(prefix)
    (tmp_path / "corpus_knowledge.npz").write_bytes(b"not a zip")
    with pytest.raises(ToolkitError, match="not a readable .npz file"):
        load_knowledge_spans(prefix)


@pytest.mark.parametrize("budget", [40, 170], ids=["while_streaming", "while_finalizing"])
def test_full_disk_is_one_line_and_abort_leaves_nothing(tmp_path, monkeypatch, budget):
    """Issue 8.10: a write error is one ToolkitError, and abort() cleans up even when closing fails too."""
    import builtins

    disk = support.FullDisk(tmp_path, budget)
    monkeypatch.setattr(builtins, "open", disk.open)
    writer = KnowledgeSpansWriter(str(tmp_path / "corpus"))
    with pytest.raises(ToolkitError) as error:
        for _ in range(5):
            writer.add_sentence([0, 2], [2, 5], [ENTITY, PHRASE])
        writer.finalize()
    assert str(error.value) == f"--output_prefix {tmp_path / 'corpus'}: cannot write (No space left on device)"
    writer.abort()
    assert list(tmp_path.iterdir()) == []
