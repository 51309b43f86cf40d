"""The `_ids.npy` / `_idx.npz` pair: writing, reading, and the one-line errors for files that do not fit."""

from pathlib import Path

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data.builder import build_train_valid_test_datasets
from ernie1.data.dataset_config import ErnieDatasetConfig
from ernie1.data.indexed_dataset import IndexedDatasetWriter, MMapIndexedDataset
from ernie1.data.knowledge_spans import KnowledgeSpansWriter, load_knowledge_spans
from ernie1.text.knowledge import ENTITY


def _tiny_prefix(tmp_path, lengths=(3, 2)):
    prefix = str(tmp_path / "corpus")
    writer = IndexedDatasetWriter(prefix, np.uint16)
    writer.add_document([[1] * n for n in lengths])
    writer.finalize()
    return prefix


def test_prefix_with_missing_index(tmp_path):
    prefix = _tiny_prefix(tmp_path)
    Path(prefix + "_idx.npz").unlink()
    with pytest.raises(ToolkitError) as error:
        MMapIndexedDataset(prefix)
    assert str(error.value) == f"{prefix}_idx.npz: data file not found (expected corpus_ids.npy and corpus_idx.npz)"


def test_prefix_whose_index_disagrees_with_ids(tmp_path):
    prefix = _tiny_prefix(tmp_path)
    np.save(prefix + "_ids.npy", np.ones(4, np.uint16))
    with pytest.raises(ToolkitError) as error:
        MMapIndexedDataset(prefix)
    assert str(error.value) == (
        f"{prefix}_idx.npz: 'lens' sums to 5 tokens but corpus_ids.npy holds 4; the two files do not belong "
        "together (re-run create_pretraining_data.py)"
    )


def _truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.5, 0.97, 0.0])
def test_truncated_index_is_one_line_naming_the_file(tmp_path, keep):
    """Issue 8.5: a cut-off `_idx.npz` (BadZipFile before) gives one line, from the reader and from the builder."""
    prefix = _tiny_prefix(tmp_path, lengths=(3, 2, 4))
    _truncate(prefix + "_idx.npz", keep)
    with pytest.raises(ToolkitError) as error:
        MMapIndexedDataset(prefix)
    message = str(error.value)
    assert message.startswith(f"{prefix}_idx.npz: not a readable .npz file (")
    assert message.endswith("); re-run create_pretraining_data.py") and "\n" not in message
    with pytest.raises(ToolkitError, match=f"^{prefix}_idx.npz: not a readable .npz file"):
        build_train_valid_test_datasets(ErnieDatasetConfig(input_dir=prefix, max_seq_length=16), None, (1, 0, 0))


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_knowledge_file_is_one_line_naming_the_file(tmp_path, keep):
    prefix = _tiny_prefix(tmp_path)
    writer = KnowledgeSpansWriter(prefix)
    writer.add_sentence([0], [2], [ENTITY])
    writer.add_sentence([], [], [])
    writer.finalize()
    _truncate(prefix + "_knowledge.npz", keep)
    with pytest.raises(ToolkitError) as error:
        load_knowledge_spans(prefix)
    assert str(error.value).startswith(f"{prefix}_knowledge.npz: not a readable .npz file (")


def test_truncated_ids_file_is_one_line_naming_the_file(tmp_path):
    prefix = _tiny_prefix(tmp_path)
    _truncate(prefix + "_ids.npy", 0.9)
    with pytest.raises(ToolkitError, match=f"^{prefix}_ids.npy: not a readable .npy array"):
        MMapIndexedDataset(prefix)


def test_streamed_npz_members_are_the_bytes_of_the_loaded_arrays(tmp_path, monkeypatch):
    import io

    from ernie1.data import indexed_dataset

    # Chunks smaller than the arrays: the copy takes several reads, as it does for a real corpus.
    monkeypatch.setattr(indexed_dataset, "_COPY_CHUNK_BYTES", 4096)
    lens = np.random.default_rng(0).integers(1, 300, 10_000).astype(np.int32)
    docs = np.arange(0, 10_001, 7, dtype=np.int64)
    lens.tofile(tmp_path / "lens.raw")
    docs.tofile(tmp_path / "docs.raw")
    loaded, streamed = io.BytesIO(), io.BytesIO()
    indexed_dataset.save_npz(loaded, {"lens": lens, "docs": docs, "max_id": np.int64(9)})
    raw = {
        "lens": indexed_dataset.RawArray(tmp_path / "lens.raw", np.dtype(np.int32)),
        "docs": indexed_dataset.RawArray(tmp_path / "docs.raw", np.dtype(np.int64)),
        "max_id": np.int64(9),
    }
    indexed_dataset.save_npz(streamed, raw)
    assert streamed.getvalue() == loaded.getvalue()
    with np.load(io.BytesIO(streamed.getvalue())) as data:
        np.testing.assert_array_equal(data["lens"], lens)
        np.testing.assert_array_equal(data["docs"], docs)
