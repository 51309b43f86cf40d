"""The native index helpers against the original's prebuilt `tool_helpers` and against a slow Python reference."""

import errno
import io
import os

import numpy as np
import pytest

from ernie1.common.errors import ToolkitError
from ernie1.data import _index_helpers as native
from ernie1.data import index_helpers

INT32_SENTINEL = index_helpers.NUM_EPOCHS_SENTINEL
INT64_SENTINEL = index_helpers.MAX_NUM_SAMPLES_SENTINEL


@pytest.fixture(scope="module")
def original():
    return pytest.importorskip("tool_helpers.helpers")


def random_corpus(seed, max_docs=60, max_sent=8, long_sentences=True, first_doc_offset=True):
    """(doc_idx int64, sizes int32) with empty, one-sentence and long-sentence documents, maybe not starting at 0."""
    rng = np.random.default_rng(seed)
    num_docs = int(rng.integers(3, max_docs))
    counts = rng.integers(0, max_sent, num_docs)
    counts[rng.integers(0, num_docs)] = max(int(counts.max()), 3)
    offset = int(rng.integers(0, 5)) if first_doc_offset else 0
    doc_idx = (offset + np.concatenate([[0], np.cumsum(counts)])).astype(np.int64)
    sizes = rng.integers(1, 130, int(doc_idx[-1]) + int(rng.integers(0, 3))).astype(np.int32)
    if long_sentences:
        sizes[rng.integers(offset, doc_idx[-1], 2)] = 600
    return doc_idx, sizes


# (corpus seed, short_seq_prob, map seed, min_num_sent, num_epochs, max_num_samples, max_seq_length)
MAPPING_CASES = [
    (0, 0.1, 1234, 2, None, 300, 509),
    (1, 0.0, 1, 2, 3, None, 61),
    (2, 0.1, 7, 1, None, 1000, 29),
    (3, 0.05, 99, 1, 2, None, 128),
    (4, 1.0, 5, 2, None, 17, 2),
    (5, 0.1, 2**31 - 2, 2, 1, None, 509),
    (6, 0.33, 0, 1, None, 5000, 64),
    (7, 0.0, 31337, 1, None, 1, 200),
]


def test_mt19937_64_reference_matches_the_standard():
    gen = MT19937_64(5489)
    outputs = [gen.next() for _ in range(10000)]
    assert outputs[0] == 14514284786278117030
    assert outputs[-1] == 9981545732273789042


def wrapper_options(case):
    """The keyword arguments of index_helpers.build_mapping for a MAPPING_CASES entry."""
    _corpus_seed, ssp, seed, min_num_sent, epochs, samples, msl = case
    return dict(
        max_seq_length=msl,
        short_seq_prob=ssp,
        seed=seed,
        min_num_sent=min_num_sent,
        num_epochs=epochs,
        max_num_samples=samples,
    )


@pytest.mark.parametrize("case", MAPPING_CASES)
def test_build_mapping_equals_original(original, case):
    corpus_seed, ssp, seed, min_num_sent, epochs, samples, msl = case
    doc_idx, sizes = random_corpus(corpus_seed)
    args = (
        doc_idx,
        sizes,
        epochs or INT32_SENTINEL,
        samples or INT64_SENTINEL,
        msl,
        ssp,
        seed,
        False,
        min_num_sent,
    )
    expected = original.build_mapping(*args)
    ours = native.build_mapping(*args)
    wrapped = index_helpers.build_mapping(doc_idx.astype(np.int32), sizes.astype(np.int64), **wrapper_options(case))
    assert expected.dtype == np.uint32 and expected.shape[1] == 3 and len(expected) > 0
    for result in (ours, wrapped):
        assert result.dtype == np.uint32
        np.testing.assert_array_equal(result, expected)
    if samples:
        assert len(ours) >= samples


@pytest.mark.parametrize("corpus_seed", [10, 11, 12])
@pytest.mark.parametrize("min_num_sent", [1, 2])
def test_build_mapping_equals_python_reference(corpus_seed, min_num_sent):
    doc_idx, sizes = random_corpus(corpus_seed, max_docs=12, max_sent=6)
    for ssp, epochs, samples in ((0.1, None, 40), (0.0, 2, None), (0.5, 1, None)):
        expected = reference_build_mapping(
            doc_idx, sizes, epochs or INT32_SENTINEL, samples or INT64_SENTINEL, 50, ssp, corpus_seed + 1, min_num_sent
        )
        ours = index_helpers.build_mapping(
            doc_idx,
            sizes,
            max_seq_length=50,
            short_seq_prob=ssp,
            seed=corpus_seed + 1,
            min_num_sent=min_num_sent,
            num_epochs=epochs,
            max_num_samples=samples,
        )
        np.testing.assert_array_equal(ours, expected)


def test_build_mapping_rows_cover_whole_documents():
    doc_idx = np.array([0, 3, 3, 4, 9], dtype=np.int64)
    sizes = np.array([10, 20, 30, 5, 100, 100, 100, 100, 100], dtype=np.int32)
    mapping = index_helpers.build_mapping(
        doc_idx, sizes, max_seq_length=150, short_seq_prob=0.0, seed=3, min_num_sent=2, num_epochs=1
    )
    # Document 0 fits in one sample; document 3 (5 sentences of 100) splits after 2 sentences (>= 150, > 1 left),
    # then keeps its last 3 together because a sample never leaves a single sentence behind; the one-sentence
    # document 2 and the empty document 1 are skipped.
    assert sorted(map(tuple, mapping.tolist())) == [(0, 3, 150), (4, 6, 150), (6, 9, 150)]


@pytest.mark.parametrize("max_seq_length,expected", [(20, [(0, 2, 20), (2, 4, 20)]), (21, [(0, 4, 21)])])
def test_a_document_is_cut_early_exactly_when_its_first_sample_reaches_the_target(max_seq_length, expected):
    # Four sentences of 10: a cut needs two sentences left after it, so the first sample can hold at most 20
    # tokens before the end. Target 20 cuts there; target 21 takes the whole document (the native fast path).
    doc_idx = np.array([0, 4], dtype=np.int64)
    sizes = np.full(4, 10, dtype=np.int32)
    args = dict(max_seq_length=max_seq_length, short_seq_prob=0.0, seed=3, min_num_sent=2, num_epochs=1)
    mapping = index_helpers.build_mapping(doc_idx, sizes, **args)
    assert sorted(map(tuple, mapping.tolist())) == expected
    reference = reference_build_mapping(doc_idx, sizes, 1, INT64_SENTINEL, max_seq_length, 0.0, 3, 2)
    np.testing.assert_array_equal(mapping, reference)


def npy_bytes(array):
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def write_mapping_bytes(path, doc_idx, sizes, **args):
    with open(path, "wb") as handle:
        shape = index_helpers.write_mapping(handle, doc_idx, sizes, **args)
    return shape, path.read_bytes()


@pytest.mark.parametrize("case", MAPPING_CASES)
def test_write_mapping_writes_the_npy_file_np_save_writes_for_build_mapping(tmp_path, case):
    doc_idx, sizes = random_corpus(case[0])
    args = wrapper_options(case)
    expected = index_helpers.build_mapping(doc_idx, sizes, **args)
    shape, written = write_mapping_bytes(tmp_path / "map.npy", doc_idx, sizes, **args)
    assert shape == expected.shape
    assert written == npy_bytes(expected)


def test_write_mapping_of_many_chunks_equals_the_original(tmp_path, original):
    # 3.2 M rows of 12 bytes, three 16 MB chunks: the writer thread writes each as the shuffle settles it, last first.
    rng = np.random.default_rng(5)
    doc_idx = np.concatenate([[0], np.cumsum(rng.integers(1, 5, 400_000))]).astype(np.int64)
    sizes = rng.integers(1, 200, int(doc_idx[-1])).astype(np.int32)
    expected = original.build_mapping(doc_idx, sizes, INT32_SENTINEL, 3_000_000, 125, 0.1, 77, False, 1)
    assert len(expected) * 12 > 2 * (16 << 20)
    args = dict(max_seq_length=125, short_seq_prob=0.1, seed=77, min_num_sent=1, max_num_samples=3_000_000)
    _shape, written = write_mapping_bytes(tmp_path / "map.npy", doc_idx, sizes, **args)
    assert written == npy_bytes(expected)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failed_write_raises_oserror_with_its_errno():
    doc_idx, sizes = random_corpus(0)
    with open("/dev/full", "wb") as handle, pytest.raises(OSError) as error:
        index_helpers.write_mapping(
            handle, doc_idx, sizes, max_seq_length=64, short_seq_prob=0.1, seed=1, min_num_sent=1, num_epochs=2
        )
    assert error.value.errno == errno.ENOSPC


def test_no_usable_document_fails_fast_with_advice():
    doc_idx = np.array([0, 1, 2, 3], dtype=np.int64)
    sizes = np.array([5, 6, 7], dtype=np.int32)
    with pytest.raises(ToolkitError) as error:
        index_helpers.build_mapping(
            doc_idx, sizes, max_seq_length=100, short_seq_prob=0.1, seed=1, min_num_sent=2, max_num_samples=10
        )
    assert str(error.value) == (
        "no document has >= 2 sentences: use binary_head=False or give documents of several sentences "
        "(one sentence per line, blank line between documents)"
    )
    # The original loops over ~2**31 epochs here; ours stops after one.
    with pytest.raises(ValueError, match="^no usable document: every one of the 3 documents"):
        native.build_mapping(doc_idx, sizes, INT32_SENTINEL, 10, 100, 0.1, 1, False, 2)
    one_sentence = index_helpers.build_mapping(
        doc_idx, sizes, max_seq_length=100, short_seq_prob=0.1, seed=1, min_num_sent=1, max_num_samples=10
    )
    assert len(one_sentence) == 12 and set(one_sentence[:, 1] - one_sentence[:, 0]) == {1}


def test_only_long_sentence_documents_are_explained():
    doc_idx = np.array([0, 2, 4], dtype=np.int64)
    sizes = np.array([600, 5, 6, 700], dtype=np.int32)
    with pytest.raises(ToolkitError) as error:
        index_helpers.build_mapping(
            doc_idx, sizes, max_seq_length=100, short_seq_prob=0.0, seed=1, min_num_sent=1, num_epochs=1
        )
    assert str(error.value) == (
        "no usable document among 2: 0 have fewer than 1 sentences and 2 have a sentence longer than 512 tokens "
        "(put one sentence per line, blank line between documents)"
    )


def test_document_stats_counts_each_reason():
    doc_idx = np.array([2, 2, 3, 6, 8], dtype=np.int64)
    sizes = np.array([1, 1, 5, 5, 900, 5, 5, 5], dtype=np.int32)
    stats = index_helpers.document_stats(doc_idx, sizes, min_num_sent=2)
    assert stats == index_helpers.DocumentStats(
        num_documents=4, empty=1, fewer_than_min=2, with_long_sentence=1, usable=1
    )


def test_wrapper_rejects_bad_arguments():
    doc_idx = np.array([0, 2], dtype=np.int64)
    sizes = np.array([5, 6], dtype=np.int32)
    common = dict(max_seq_length=10, seed=1, min_num_sent=1, num_epochs=1)
    with pytest.raises(ToolkitError, match=r"^--short_seq_prob 1.5: must be in \[0, 1\]$"):
        index_helpers.build_mapping(doc_idx, sizes, short_seq_prob=1.5, **common)
    with pytest.raises(ToolkitError, match=r"^--seed -1: must be in \[0, 2147483646\]$"):
        index_helpers.build_mapping(doc_idx, sizes, short_seq_prob=0.1, **{**common, "seed": -1})
    with pytest.raises(ValueError, match="give num_epochs or max_num_samples"):
        index_helpers.build_mapping(doc_idx, sizes, short_seq_prob=0.1, **{**common, "num_epochs": None})
    with pytest.raises(ValueError, match="sizes must hold integers"):
        index_helpers.build_mapping(doc_idx, sizes.astype(np.float32), short_seq_prob=0.1, **common)
    with pytest.raises(IndexError, match="lies outside the 2 sentences"):
        native.build_mapping(np.array([0, 3], dtype=np.int64), sizes, 1, INT64_SENTINEL, 10, 0.1, 1, False, 1)


@pytest.mark.parametrize("corpus_seed", [20, 21, 22, 23])
@pytest.mark.parametrize("use_one_sent_blocks", [False, True])
def test_build_blocks_mapping_equals_original(original, corpus_seed, use_one_sent_blocks):
    doc_idx, sizes = random_corpus(corpus_seed, first_doc_offset=False)
    titles = np.random.default_rng(corpus_seed).integers(0, 20, len(doc_idx) - 1).astype(np.int32)
    for epochs, samples in ((2, INT64_SENTINEL), (INT32_SENTINEL, 150)):
        args = (doc_idx, sizes, titles, epochs, samples, 120, corpus_seed, False, use_one_sent_blocks)
        expected = original.build_blocks_mapping(*args)
        ours = native.build_blocks_mapping(*args)
        wrapped = index_helpers.build_blocks_mapping(
            doc_idx,
            sizes,
            titles,
            max_seq_length=120,
            seed=corpus_seed,
            num_epochs=None if epochs == INT32_SENTINEL else epochs,
            max_num_samples=None if samples == INT64_SENTINEL else samples,
            use_one_sent_blocks=use_one_sent_blocks,
        )
        assert expected.shape[1] == 4 and len(expected) > 0
        np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(wrapped, expected)
        assert ours.dtype == expected.dtype == np.uint32


@pytest.mark.parametrize(
    "weights,size",
    [
        ([0.5, 0.5], 10),
        ([0.2, 0.3, 0.5], 1000),
        ([1.0], 7),
        ([0.1, 0.2, 0.3, 0.4], 999),
        ([0.7, 0.1, 0.1, 0.05, 0.05], 4321),
        ([0.3, 0.7], 0),
        (list(np.random.default_rng(0).dirichlet(np.ones(3))), 100_000),
        (list(np.random.default_rng(1).dirichlet(np.ones(40))), 20_000),
    ],
)
def test_build_blending_indices_equals_original(original, weights, size):
    weights = np.asarray(weights, dtype=np.float64)
    for dtype in (np.uint8, np.int16):
        expected_index = np.zeros(size, dtype=dtype)
        expected_sample = np.zeros(size, dtype=np.int64)
        original.build_blending_indices(expected_index, expected_sample, weights, len(weights), size, False)
        ours_index = np.zeros(size, dtype=dtype)
        ours_sample = np.zeros(size, dtype=np.int64)
        native.build_blending_indices(ours_index, ours_sample, weights, len(weights), size, False)
        np.testing.assert_array_equal(ours_index, expected_index)
        np.testing.assert_array_equal(ours_sample, expected_sample)
    wrapped_index, wrapped_sample = index_helpers.build_blending_indices(weights, size)
    assert wrapped_index.dtype == np.uint8 and wrapped_sample.dtype == np.int64
    np.testing.assert_array_equal(wrapped_index, expected_index.astype(np.uint8))
    np.testing.assert_array_equal(wrapped_sample, expected_sample)


def test_blending_alternates_equal_weights_and_counts_per_dataset():
    dataset_index, sample_index = index_helpers.build_blending_indices(np.array([0.5, 0.5]), 6)
    assert dataset_index.tolist() == [0, 1, 0, 1, 0, 1]
    assert sample_index.tolist() == [0, 0, 1, 1, 2, 2]


def test_blending_never_converts_its_output_arrays():
    # A silent dtype conversion would fill a temporary copy and leave the caller's arrays untouched.
    with pytest.raises(TypeError):
        native.build_blending_indices(np.zeros(4, np.int64), np.zeros(4, np.int64), np.ones(2) / 2, 2, 4, False)
    with pytest.raises(ValueError, match="at least size = 5"):
        native.build_blending_indices(np.zeros(4, np.uint8), np.zeros(4, np.int64), np.ones(2) / 2, 2, 5, False)


@pytest.mark.parametrize("seed", [30, 31, 32])
def test_build_sample_idx_equals_original(original, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 50, 40).astype(np.int32)
    sizes[0] = 7
    epochs = 3
    doc_idx = np.concatenate([rng.permutation(40) for _ in range(epochs)]).astype(np.int32)
    tokens_per_epoch = int(sizes.sum())
    for seq_length in (2, 16, 101):
        expected = original.build_sample_idx(sizes, doc_idx, seq_length, epochs, tokens_per_epoch)
        ours = index_helpers.build_sample_idx(sizes, doc_idx, seq_length, epochs, tokens_per_epoch)
        assert ours.dtype == np.int32 and ours.shape == ((epochs * tokens_per_epoch - 1) // seq_length + 1, 2)
        np.testing.assert_array_equal(ours, expected)


def test_build_sample_idx_toy_example():
    sizes = np.array([4, 3, 5], dtype=np.int32)
    samples = index_helpers.build_sample_idx(sizes, np.array([0, 1, 2], dtype=np.int32), 4, 1, 12)
    # Sample k spans seq_length + 1 = 5 tokens, so neighbours share one: tokens 0-4, 4-8, 8-12 (doc, offset).
    assert samples.tolist() == [[0, 0], [1, 0], [2, 1]]
    with pytest.raises(IndexError, match="doc_idx ran out"):
        index_helpers.build_sample_idx(sizes, np.array([0, 1, 2], dtype=np.int32), 4, 2, 12)


class MT19937_64:
    """Slow pure-Python std::mt19937_64 (numpy has no 64-bit Mersenne Twister with the standard's seeding)."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = [seed & self.MASK]
        for i in range(1, 312):
            previous = self.state[-1]
            self.state.append((6364136223846793005 * (previous ^ (previous >> 62)) + i) & self.MASK)
        self.index = 312

    def _twist(self):
        state = self.state
        for i in range(312):
            x = (state[i] & 0xFFFFFFFF80000000) | (state[(i + 1) % 312] & 0x7FFFFFFF)
            shifted = x >> 1
            if x & 1:
                shifted ^= 0xB5026F5AA96619E9
            state[i] = state[(i + 156) % 312] ^ shifted
        self.index = 0

    def next(self):
        if self.index >= 312:
            self._twist()
        x = self.state[self.index]
        self.index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & self.MASK


def reference_build_mapping(
    doc_idx, sizes, num_epochs, max_num_samples, max_seq_length, short_seq_prob, seed, min_num_sent
):
    """REFERENCE §4 spelled out in Python; numpy's legacy RandomState is std::mt19937 with the same seeding."""
    rand32 = np.random.RandomState(seed)
    ratio = int(round(1.0 / short_seq_prob)) if short_seq_prob > 0 else 0

    def target():
        if ratio == 0:
            return max_seq_length
        number = int(rand32.randint(0, 2**32, dtype=np.uint32))
        return 2 + number % (max_seq_length - 1) if number % ratio == 0 else max_seq_length

    rows = []
    for _epoch in range(num_epochs):
        if len(rows) >= max_num_samples:
            break
        for doc in range(len(doc_idx) - 1):
            first, last = int(doc_idx[doc]), int(doc_idx[doc + 1])
            remaining = last - first
            if remaining > 1 and any(sizes[s] > 512 for s in range(first, last)):
                continue
            if remaining < min_num_sent:
                continue
            start, seq_len, num_sent, goal = first, 0, 0, target()
            for sentence in range(first, last):
                seq_len += int(sizes[sentence])
                num_sent += 1
                remaining -= 1
                if (seq_len >= goal and remaining > 1 and num_sent >= min_num_sent) or remaining == 0:
                    rows.append((start, sentence + 1, goal))
                    start, seq_len, num_sent, goal = sentence + 1, 0, 0, target()
    rand64 = MT19937_64(seed + 1)
    for i in range(len(rows) - 1, 0, -1):
        j = rand64.next() % (i + 1)
        rows[i], rows[j] = rows[j], rows[i]
    return np.asarray(rows, dtype=np.uint32).reshape(-1, 3)


def test_real_corpus_split_map_equals_original(original, tiny_prefix):
    from ernie1.data.indexed_dataset import MMapIndexedDataset

    indexed = MMapIndexedDataset(tiny_prefix)
    train_docs = indexed.doc_idx[0:39]
    for samples, min_num_sent in ((200, 2), (3, 1)):
        expected = original.build_mapping(
            train_docs, indexed.sizes, INT32_SENTINEL, samples, 61, 0.1, 1234, False, min_num_sent
        )
        ours = index_helpers.build_mapping(
            train_docs,
            indexed.sizes,
            max_seq_length=61,
            short_seq_prob=0.1,
            seed=1234,
            min_num_sent=min_num_sent,
            max_num_samples=samples,
        )
        np.testing.assert_array_equal(ours, expected)
