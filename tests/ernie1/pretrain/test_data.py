"""Ordered batch sampler: rank slices of each global micro-batch, exact resume offsets, wrap-around for eval."""

from __future__ import annotations

import pytest

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.data import EvalStream, OrderedBatchSampler, data_prefixes


def test_ranks_take_their_slice_of_each_global_micro_batch():
    rank0 = list(OrderedBatchSampler(20, micro_batch_size=2, data_rank=0, data_world_size=2))
    rank1 = list(OrderedBatchSampler(20, micro_batch_size=2, data_rank=1, data_world_size=2))
    assert rank0 == [[0, 1], [4, 5], [8, 9], [12, 13], [16, 17]]
    assert rank1 == [[2, 3], [6, 7], [10, 11], [14, 15], [18, 19]]
    single = list(OrderedBatchSampler(20, micro_batch_size=2))
    # 1 process x accumulation 2 sees the same samples in the same order as 2 ranks x 1.
    assert [single[i] + single[i + 1] for i in range(0, 10, 2)] == [a + b for a, b in zip(rank0, rank1)]


def test_resume_skips_consumed_samples_exactly_once():
    full = list(OrderedBatchSampler(30, micro_batch_size=3))
    resumed = list(OrderedBatchSampler(30, micro_batch_size=3, consumed_samples=12))
    assert resumed == full[4:]
    assert len(OrderedBatchSampler(30, micro_batch_size=3, consumed_samples=12)) == 6


def test_incomplete_tail_dropped_and_wrap():
    assert list(OrderedBatchSampler(7, micro_batch_size=3)) == [[0, 1, 2], [3, 4, 5]]
    wrapped = OrderedBatchSampler(7, micro_batch_size=3, consumed_samples=3, wrap=True)
    iterator = iter(wrapped)
    assert [next(iterator) for _ in range(3)] == [[3, 4, 5], [0, 1, 2], [3, 4, 5]]


def test_eval_stream_continues_between_evaluations():
    stream = EvalStream(loader=[["b0"], ["b1"], ["b2"], ["b3"]])
    assert list(stream.take(2)) == [["b0"], ["b1"]]
    assert list(stream.take(1)) == [["b2"]]
    assert list(EvalStream(None).take(3)) == []


def test_data_prefixes(tmp_path):
    for name in ("b", "a"):
        (tmp_path / f"{name}_idx.npz").write_bytes(b"")
    assert data_prefixes(str(tmp_path)) == [(1.0, "a"), (1.0, "b")]
    assert data_prefixes(f"2 {tmp_path}/a 3 {tmp_path}/b") == [(2.0, "a"), (3.0, "b")]
    assert data_prefixes(str(tmp_path / "a")) == [(1.0, "a")]
    with pytest.raises(ToolkitError, match="no data file found"):
        data_prefixes(str(_empty(tmp_path)))


def _empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty
