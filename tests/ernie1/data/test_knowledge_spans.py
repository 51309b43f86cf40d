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


def test_corpus_spans_are_whole_words_sorted_and_disjoint():
    """Spans of one kind in corpus offsets: widened to whole words within their sentence, overlaps dropped."""
    from ernie1.data.knowledge_spans import KnowledgeSpans

    # Token ids 0..3; id 1 is a `##` continuation. Sentence 0 = offsets 0-7, sentence 1 = offsets 7-11.
    is_continuation = np.array([False, True, False, False])
    ids = np.array([0, 1, 2, 0, 1, 1, 0, 1, 0, 1, 2])
    #  words:       [0  1] [2] [3  4  5] [6] | [7] [8 9] [10]   (id 1 at offset 7 starts sentence 1: a word of its own)
    sentence_offsets = np.array([0, 7, 11])
    spans = KnowledgeSpans(
        sent_ptr=np.array([0, 5, 8]),
        starts=np.array([1, 2, 3, 4, 6, 0, 1, 3], np.int32),
        ends=np.array([2, 3, 5, 6, 7, 1, 2, 4], np.int32),
        kinds=np.array([ENTITY, ENTITY, ENTITY, ENTITY, PHRASE, ENTITY, ENTITY, ENTITY], np.uint8),
    )
    starts, ends = spans.corpus_spans(ENTITY, sentence_offsets, ids, is_continuation)
    # (1,2) -> word [0,2); (2,3) stays; (3,5) -> [3,6); (4,6) -> [3,6) overlaps the kept [3,6) -> dropped;
    # sentence 1: (0,1) -> [7,8) (the sentence start bounds it); (1,2) -> [8,10); (3,4) -> [10,11).
    assert (starts.tolist(), ends.tolist()) == ([0, 2, 3, 7, 8, 10], [2, 3, 6, 8, 10, 11])
    phrase_starts, phrase_ends = spans.corpus_spans(PHRASE, sentence_offsets, ids, is_continuation)
    assert (phrase_starts.tolist(), phrase_ends.tolist()) == ([6], [7])
    assert spans.corpus_spans(ENTITY, sentence_offsets, ids, is_continuation)[0] is starts  # computed once


def test_overlapping_spans_keep_the_first_of_each_clash():
    from ernie1.data.knowledge_spans import _without_overlaps

    # (0,3) kept; (2,6) overlaps it -> dropped; (3,6) overlaps only the dropped one -> kept; (5,7) overlaps it.
    keep = _without_overlaps(np.array([0, 2, 3, 5, 8]), np.array([3, 6, 6, 7, 9]))
    assert keep.tolist() == [True, False, True, False, True]
