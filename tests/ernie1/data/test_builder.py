"""Prefixes, document splits, the index-map cache and the dataset builder (REFERENCE §3, §5, §18.7/12/15)."""

import dataclasses
import errno
import logging
import mmap
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data import builder as dataset_utils
from ernie1.data import index_helpers
from ernie1.data.builder import (
    IndexMapSpec,
    build_train_valid_test_datasets,
    discover_prefixes,
    get_samples_mapping,
    get_train_valid_test_split_,
)
from ernie1.data.dataset_config import ErnieDatasetConfig
from ernie1.data.indexed_dataset import IndexedDatasetWriter, MMapIndexedDataset
from ernie1.data.masking import MaskingVocab


@pytest.fixture(scope="module")
def vocab(vocab_path):
    return MaskingVocab.from_vocab_file(str(vocab_path))


def write_corpus(directory, name, sentences_per_doc, seed=0, sentence_len=(6, 20)):
    """A synthetic corpus: document d has sentences_per_doc[d] sentences of random ids (plain CJK chars)."""
    rng = np.random.default_rng(seed)
    prefix = str(Path(directory) / name)
    writer = IndexedDatasetWriter(prefix, np.uint16)
    for count in sentences_per_doc:
        writer.add_document([rng.integers(670, 7990, rng.integers(*sentence_len)).tolist() for _ in range(count)])
    writer.finalize()
    return prefix


def config_for(input_dir, **overrides):
    return ErnieDatasetConfig(input_dir=str(input_dir), max_seq_length=64, **overrides)


# REFERENCE §5 worked values for 949,50,1.
@pytest.mark.parametrize(
    "size,boundaries",
    [
        (10, [0, 10, 10, 10]),
        (100, [0, 95, 100, 100]),
        (500, [0, 475, 500, 500]),
        (501, [0, 475, 500, 501]),
        (1000, [0, 949, 999, 1000]),
        (15_702_702, [0, 14901864, 15686999, 15702702]),
    ],
)
def test_split_worked_values(size, boundaries):
    assert get_train_valid_test_split_("949,50,1", size) == boundaries


def test_split_variants():
    assert get_train_valid_test_split_("949/50/1", 1000) == [0, 949, 999, 1000]
    assert get_train_valid_test_split_("98,2", 100) == [0, 98, 100, 100]
    assert get_train_valid_test_split_("100", 7) == [0, 7, 7, 7]
    assert get_train_valid_test_split_("1,1,1", 2) == [0, 0, 1, 2]
    assert get_train_valid_test_split_("949,50,1", 0) == [0, 0, 0, 0]
    with pytest.raises(ToolkitError, match="^--split a,b: expected up to three numbers such as 949,50,1$"):
        get_train_valid_test_split_("a,b", 10)
    with pytest.raises(ToolkitError, match="^--split 0,0,0: shares must be non-negative numbers, not all zero$"):
        get_train_valid_test_split_("0,0,0", 10)


def test_discover_prefixes_in_a_directory_sorted_with_weight_one(tmp_path):
    second = write_corpus(tmp_path, "b_part", [2, 3])
    first = write_corpus(tmp_path, "a_part", [2, 3])
    (tmp_path / "notes.txt").write_text("not data")
    assert discover_prefixes(str(tmp_path)) == [(1.0, first), (1.0, second)]
    assert discover_prefixes(first) == [(1.0, first)]
    assert discover_prefixes(first + "_idx.npz") == [(1.0, first)]
    assert discover_prefixes(f"2 {first} 0.5 {second}_ids.npy") == [(2.0, first), (0.5, second)]


def test_discover_prefixes_errors(tmp_path):
    with pytest.raises(ToolkitError) as error:
        discover_prefixes(str(tmp_path))
    assert str(error.value) == (
        f"--input_dir {tmp_path}: no data file found (expected <prefix>_ids.npy + <prefix>_idx.npz pairs written by "
        "create_pretraining_data.py)"
    )
    (tmp_path / "corpus.idx").write_bytes(b"MMIDIDX")
    with pytest.raises(ToolkitError, match=r"found corpus.idx in the PaddleNLP 2.6\+ .bin/.idx format"):
        discover_prefixes(str(tmp_path))
    with pytest.raises(ToolkitError, match=r"^--input_dir '1 a 2': expected pairs 'weight1 prefix1"):
        discover_prefixes("1 a 2")
    with pytest.raises(ToolkitError, match="^--input_dir '-1 a 2 b': weight -1 of a must be a positive number$"):
        discover_prefixes("-1 a 2 b")
    with pytest.raises(ToolkitError, match="^--input_dir 'x a 2 b': 'x' is not a weight"):
        discover_prefixes("x a 2 b")
    missing = str(tmp_path / "missing")
    with pytest.raises(ToolkitError, match=f"^--input_dir {missing}: neither a directory nor a data prefix"):
        discover_prefixes(missing)


def test_index_map_name_is_the_originals_plus_a_key_of_every_input(tmp_path, monkeypatch):
    spec = IndexMapSpec(
        name="train",
        max_seq_length=509,
        short_seq_prob=0.1,
        seed=1234,
        min_num_sent=2,
        doc_range=(0, 949),
        corpus_fingerprint="ab" * 32,
        max_num_samples=3200,
    )
    prefix = str(tmp_path / "baike_sample")
    key = spec.cache_key()
    assert re.fullmatch("[0-9a-f]{16}", key)
    assert spec.filename(prefix) == f"{prefix}_train_indexmap_3200mns_509msl_0.10ssp_1234s_{key}.npy"
    epochs = IndexMapSpec("valid", 61, 0.0, 7, 2, (0, 5), "ab" * 32, num_epochs=3)
    assert epochs.filename("p") == f"p_valid_indexmap_3ep_61msl_0.00ssp_7s_{epochs.cache_key()}.npy"
    # Same inputs, same key; any input the map depends on (the original's name left most out) changes it.
    assert dataclasses.replace(spec).cache_key() == key
    changes = [
        {"corpus_fingerprint": "cd" * 32},
        {"doc_range": (0, 948)},
        {"min_num_sent": 1},
        {"short_seq_prob": 0.095},
        {"seed": 1235},
        {"max_seq_length": 125},
        {"max_num_samples": 3201},
        {"num_epochs": 2},
    ]
    keys = {dataclasses.replace(spec, **change).cache_key() for change in changes}
    assert len(keys) == len(changes) and key not in keys
    monkeypatch.setattr(index_helpers, "MAPPING_VERSION", index_helpers.MAPPING_VERSION + 1)
    assert spec.cache_key() != key


def test_samples_mapping_is_built_once_atomically_and_memory_mapped(tmp_path, monkeypatch):
    prefix = write_corpus(tmp_path, "corpus", [3, 1, 4, 2, 5, 3])
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (1, 5), indexed.fingerprint, max_num_samples=20)
    mapping = get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)
    expected = index_helpers.build_mapping(
        indexed.doc_idx[1:6],
        indexed.sizes,
        max_seq_length=30,
        short_seq_prob=0.1,
        seed=5,
        min_num_sent=2,
        max_num_samples=20,
    )
    assert isinstance(mapping, np.memmap) and mapping.dtype == np.uint32
    np.testing.assert_array_equal(mapping, expected)
    assert mapping[:, 0].min() >= indexed.doc_idx[1] and mapping[:, 1].max() <= indexed.doc_idx[5]
    assert sorted(os.listdir(tmp_path)) == ["corpus_ids.npy", "corpus_idx.npz", Path(spec.filename(prefix)).name]

    def must_not_rebuild(*args, **kwargs):
        raise AssertionError("the cached index map was rebuilt")

    monkeypatch.setattr(index_helpers, "build_mapping", must_not_rebuild)
    monkeypatch.setattr(index_helpers, "write_mapping", must_not_rebuild)
    np.testing.assert_array_equal(get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0), expected)
    np.testing.assert_array_equal(get_samples_mapping(indexed, spec, builds=False, wait_timeout_s=1.0), expected)


def test_waiting_rank_times_out_naming_the_file(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 4])
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 2), MMapIndexedDataset(prefix).fingerprint, max_num_samples=4)
    with pytest.raises(ToolkitError) as error:
        get_samples_mapping(MMapIndexedDataset(prefix), spec, builds=False, wait_timeout_s=0.2)
    assert str(error.value) == (
        f"{spec.filename(prefix)}: index map not written after 0.2 s of waiting for the rank that builds it (local "
        "rank 0, or global rank 0 with share_folder); check that rank's log, or raise cache_wait_timeout_s"
    )


def test_waiting_rank_loads_the_map_once_it_appears(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 4, 2])
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 3), indexed.fingerprint, max_num_samples=4)

    def build_later():
        time.sleep(0.3)
        get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)

    builder = threading.Thread(target=build_later)
    builder.start()
    mapping = get_samples_mapping(indexed, spec, builds=False, wait_timeout_s=20.0)
    builder.join()
    assert mapping.shape[1] == 3 and len(mapping) >= 4


def test_corrupt_cache_is_reported(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 4])
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 2), MMapIndexedDataset(prefix).fingerprint, max_num_samples=4)
    np.save(spec.filename(prefix), np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ToolkitError, match=r"not an index map \(shape \(4, 2\), dtype int64; expected \[N,3\]"):
        get_samples_mapping(MMapIndexedDataset(prefix), spec, builds=True, wait_timeout_s=1.0)


def test_builder_on_tiny_corpus_gives_none_for_the_empty_test_split(vocab, caplog, tmp_path):
    # 40 documents with 949,50,1 -> documents [0,38) train, [38,40) valid, no test (PaddleNLP #2572).
    prefix = write_corpus(tmp_path, "tiny", [3] * 40)
    config = config_for(prefix)
    with caplog.at_level(logging.WARNING, logger="ernie1"):
        train, valid, test = build_train_valid_test_datasets(config, vocab, (50, 6, 4))
    assert test is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{prefix}: the test split is empty (--split 949,50,1 over 40 documents gives documents [40, 40)); no test "
        "dataset. Use more documents or a larger test share in --split"
    ]
    assert len(train) >= 50 and len(valid) >= 6
    assert (train.split_seed, valid.split_seed) == (1234, 1234 + (1 << 30))
    sample = train[0]
    assert sample["input_ids"].dtype == np.int64 and sample["input_ids"][0] == vocab.cls_id
    mapping = np.asarray(valid.samples_mapping)
    assert mapping[:, 0].min() >= 38 * 3 and mapping[:, 1].max() <= 40 * 3


def test_builder_on_the_shared_real_text_corpus(tiny_prefix, vocab):
    train, valid, test = build_train_valid_test_datasets(config_for(tiny_prefix), vocab, (16, 0, 0))
    assert valid is None and test is None and len(train) >= 16
    assert {"input_ids", "token_type_ids", "masked_positions", "masked_labels"} <= set(train[3])


def test_one_sentence_documents_need_binary_head_false(tmp_path, vocab):
    prefix = write_corpus(tmp_path, "lines", [1] * 30)
    with pytest.raises(ToolkitError) as error:
        build_train_valid_test_datasets(config_for(prefix), vocab, (10, 2, 0))
    assert str(error.value) == (
        f"{prefix}: train split (documents 0 to 28 of --split 949,50,1): no document has >= 2 sentences: use "
        "binary_head=False or give documents of several sentences (one sentence per line, blank line between "
        "documents)"
    )
    train, valid, test = build_train_valid_test_datasets(config_for(prefix, binary_head=False), vocab, (10, 2, 0))
    assert len(train) >= 10 and len(valid) >= 2 and test is None
    assert len(list(tmp_path.glob("lines_train_indexmap_10mns_61msl_0.10ssp_1234s_*.npy"))) == 1


def test_valid_split_without_usable_documents_is_skipped(tmp_path, vocab, caplog):
    prefix = write_corpus(tmp_path, "mixed", [3] * 18 + [1, 1])
    with caplog.at_level(logging.WARNING, logger="ernie1"):
        train, valid, _ = build_train_valid_test_datasets(config_for(prefix, split="9,1"), vocab, (5, 5, 0))
    assert valid is None and len(train) >= 5
    assert [r.getMessage() for r in caplog.records] == [
        f"{prefix}: the valid split has no usable document (--split 9,1 over 20 documents gives documents [18, 20)); "
        "no valid dataset. Use more documents or a larger valid share in --split"
    ]


def test_empty_train_split_is_an_error(tmp_path, vocab):
    prefix = write_corpus(tmp_path, "corpus", [3] * 4)
    with pytest.raises(ToolkitError, match=r"train split \(documents 0 to 0 of --split 0,1\): the split holds no doc"):
        build_train_valid_test_datasets(config_for(prefix, split="0,1"), vocab, (5, 5, 0))


def test_only_the_building_rank_writes_the_cache(tmp_path, vocab):
    prefix = write_corpus(tmp_path, "corpus", [3] * 10)
    waiting = config_for(prefix, split="1", share_folder=True, cache_wait_timeout_s=0.1)
    with pytest.raises(ToolkitError, match="index map not written after 0.1 s"):
        build_train_valid_test_datasets(waiting, vocab, (5, 0, 0), local_rank=0, global_rank=1)
    train, _, _ = build_train_valid_test_datasets(waiting, vocab, (5, 0, 0), local_rank=1, global_rank=0)
    assert len(train) >= 5
    # Without share_folder each node's local rank 0 builds its own copy.
    node_local = config_for(prefix, split="1", seed=7, cache_wait_timeout_s=0.1)
    train, _, _ = build_train_valid_test_datasets(node_local, vocab, (5, 0, 0), local_rank=0, global_rank=3)
    assert len(train) >= 5


def test_per_split_seeds_differ():
    seeds = {name: dataset_utils.split_seed(1234, name) for name in dataset_utils.SPLIT_NAMES}
    assert seeds == {"train": 1234, "valid": 1234 + 2**30, "test": 1234 + 2**31}
    assert dataset_utils.split_seed(2**32 - 1, "valid") == 2**30 - 1


def test_builder_accepts_a_paddlenlp_tokenizer(tmp_path, vocab_path):
    from ernie1.text.tokenizer import load_tokenizer

    prefix = write_corpus(tmp_path, "corpus", [3] * 10)
    train, _, _ = build_train_valid_test_datasets(
        config_for(prefix, split="1"), load_tokenizer(str(vocab_path)), (4, 0, 0)
    )
    assert len(train) >= 4 and train[0]["input_ids"][-1] == train.vocab.sep_id


def test_single_document_corpus_trains_without_valid_and_test(tmp_path, vocab, caplog):
    prefix = write_corpus(tmp_path, "one", [4])
    with caplog.at_level(logging.WARNING, logger="ernie1"):
        train, valid, test = build_train_valid_test_datasets(config_for(prefix), vocab, (3, 2, 2))
    assert valid is None and test is None and len(train) >= 3
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"{prefix}: the valid split is empty",
        f"{prefix}: the test split is empty",
    ]


def test_knowledge_spans_reach_the_dataset_when_phrase_masking_needs_them(tmp_path, vocab):
    from ernie1.data.knowledge_spans import KnowledgeSpansWriter

    prefix = write_corpus(tmp_path, "corpus", [3] * 10)
    mixed = config_for(prefix, split="1", masking_level="word:0.5,phrase:0.5")
    with pytest.raises(ToolkitError, match="phrase/entity masking needs knowledge spans"):
        build_train_valid_test_datasets(mixed, vocab, (4, 0, 0))
    writer = KnowledgeSpansWriter(prefix)
    for _ in range(len(MMapIndexedDataset(prefix))):
        writer.add_sentence(np.array([0]), np.array([2]), np.array([2]))
    writer.finalize()
    train, _, _ = build_train_valid_test_datasets(mixed, vocab, (4, 0, 0))
    assert train.knowledge is not None and len(train.knowledge) == 30
    word_only, _, _ = build_train_valid_test_datasets(config_for(prefix, split="1"), vocab, (4, 0, 0))
    assert word_only.knowledge is None


def _built_maps(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("built train index map")]


@pytest.mark.parametrize("sentences_after", [6, 3], ids=["more_sentences", "fewer_sentences"])
def test_a_regenerated_corpus_never_reuses_the_stale_index_map(tmp_path, vocab, caplog, sentences_after):
    """Issue 8.1: same prefix, same number of documents, other sentences -> a new map that fits the new data."""
    prefix = write_corpus(tmp_path, "corpus", [4] * 30)
    config = config_for(prefix)
    with caplog.at_level(logging.INFO, logger="ernie1.data.builder"):
        build_train_valid_test_datasets(config, vocab, (20, 0, 0))
        assert len(_built_maps(caplog)) == 1
        write_corpus(tmp_path, "corpus", [sentences_after] * 30, seed=1)
        train, _, _ = build_train_valid_test_datasets(config, vocab, (20, 0, 0))
    assert len(_built_maps(caplog)) == 2
    assert len(list(tmp_path.glob("corpus_train_indexmap_*.npy"))) == 2
    indexed = MMapIndexedDataset(prefix)
    rows = np.asarray(train.samples_mapping, dtype=np.int64)
    owner = np.searchsorted(indexed.doc_idx, rows[:, 0], side="right") - 1
    assert np.array_equal(owner, np.searchsorted(indexed.doc_idx, rows[:, 1] - 1, side="right") - 1)
    # Whole epochs: every sentence of the 28 train documents is in some sample.
    covered = np.zeros(len(indexed), dtype=bool)
    for start, end in rows[:, :2]:
        covered[start:end] = True
    assert covered[: indexed.doc_idx[28]].all() and not covered[indexed.doc_idx[28] :].any()
    for index in range(len(train)):
        assert len(train[index]["input_ids"]) <= config.max_seq_length


def test_a_found_cache_that_does_not_fit_the_corpus_is_refused(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 4, 2])
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 3), indexed.fingerprint, max_num_samples=2)
    np.save(spec.filename(prefix), np.array([[0, 3, 30], [2, 5, 30]], dtype=np.uint32))  # row 1 spans docs 0 and 1
    with pytest.raises(ToolkitError) as error:
        get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)
    assert str(error.value) == (
        f"{spec.filename(prefix)}: row 1 (sentences 2 to 5) does not lie within one document of the train split of "
        f"{prefix}_idx.npz; delete it to rebuild"
    )
    np.save(spec.filename(prefix), np.array([[0, 3, 30]], dtype=np.uint32))
    with pytest.raises(ToolkitError, match=r"1 rows for 2 requested samples; delete it to rebuild$"):
        get_samples_mapping(indexed, spec, builds=False, wait_timeout_s=1.0)


def test_a_corpus_encoded_with_a_larger_vocab_is_refused_at_start(tmp_path, vocab):
    """Issue 8.2 (data side): ids beyond the tokenizer's vocab stop the run before any sample is drawn."""
    prefix = str(tmp_path / "big")
    writer = IndexedDatasetWriter(prefix, np.int32)
    for doc in range(30):
        writer.add_document([[700 + doc, 800, 900], [vocab.size + doc, 701]])
    writer.finalize()
    with pytest.raises(ToolkitError) as error:
        build_train_valid_test_datasets(config_for(prefix), vocab, (10, 0, 0))
    assert str(error.value) == (
        f"{prefix}_ids.npy: token id {vocab.size + 29} is outside the tokenizer's vocabulary ({vocab.size} ids with "
        "the ## extension): the corpus was encoded with another vocab; train with the vocab that "
        "create_pretraining_data.py was given"
    )
    assert not list(tmp_path.glob("*indexmap*"))
    # A corpus written without the stored maximum (the original's two-array _idx.npz) is scanned instead.
    with np.load(prefix + "_idx.npz") as index:
        assert int(index["max_id"]) == vocab.size + 29
        np.savez(prefix + "_idx.npz", lens=index["lens"], docs=index["docs"])
    with pytest.raises(ToolkitError, match=f"token id {vocab.size + 29} is outside the tokenizer's vocabulary"):
        build_train_valid_test_datasets(config_for(prefix), vocab, (10, 0, 0))


def test_a_truncated_index_map_cache_is_one_line_naming_the_file(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 4, 2])
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 3), indexed.fingerprint, max_num_samples=2)
    get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)
    path = Path(spec.filename(prefix))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ToolkitError, match=f"^{re.escape(str(path))}: unreadable index-map cache \\(.*\\); delete it"):
        get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)


def _file_mapping_memory(path):
    """(Rss, Pss) in kB summed over this process' memory mappings of `path` (Linux /proc/self/smaps)."""
    rss = pss = 0
    inside = False
    with open("/proc/self/smaps") as handle:
        for line in handle:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = len(fields) >= 6 and fields[5] == path
            elif inside and fields[0] == "Rss:":
                rss += int(fields[1])
            elif inside and fields[0] == "Pss:":
                pss += int(fields[1])
    return rss, pss


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")
def test_every_load_of_the_map_shares_the_files_pages(tmp_path):
    prefix = write_corpus(tmp_path, "corpus", [3, 1, 4, 2, 5, 3] * 50)
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 300), indexed.fingerprint, max_num_samples=200_000)
    built = get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)
    again = get_samples_mapping(indexed, spec, builds=False, wait_timeout_s=1.0)
    path = spec.filename(prefix)
    for mapping in (built, again):
        assert isinstance(mapping, np.memmap) and isinstance(mapping.base, mmap.mmap)
        assert not mapping.flags.writeable and mapping.filename == os.path.abspath(path)
    # The building rank's map is the file too, not the rows it built: the same bytes np.save writes for them.
    rows = index_helpers.build_mapping(
        indexed.doc_idx, indexed.sizes, max_seq_length=30, short_seq_prob=0.1, seed=5, min_num_sent=2,
        max_num_samples=200_000,
    )  # fmt: skip
    np.testing.assert_array_equal(built, rows)
    # Both loads map the same page-cache pages: each page counts half to each mapping (no copy per load).
    assert int(built[:, 2].sum()) == int(again[:, 2].sum()) == int(rows[:, 2].sum())
    rss_kb, pss_kb = _file_mapping_memory(os.path.abspath(path))
    assert rss_kb >= 2 * built.nbytes // 1024 - 8
    assert abs(2 * pss_kb - rss_kb) <= 16


def test_a_failed_cache_write_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    prefix = write_corpus(tmp_path, "corpus", [3, 4, 2])
    indexed = MMapIndexedDataset(prefix)
    spec = IndexMapSpec("train", 30, 0.1, 5, 2, (0, 3), indexed.fingerprint, max_num_samples=2)

    def disk_full(handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(index_helpers, "write_mapping", disk_full)
    with pytest.raises(ToolkitError) as error:
        get_samples_mapping(indexed, spec, builds=True, wait_timeout_s=1.0)
    assert str(error.value) == (
        f"{spec.filename(prefix)}: cannot write the index-map cache (No space left on device); the directory of "
        "--input_dir must be writable"
    )
    assert sorted(os.listdir(tmp_path)) == ["corpus_ids.npy", "corpus_idx.npz"]
