"""Tokenizer, datasets and loaders for pretraining: ordered batches that resume at `consumed_samples` (§8, §18.16)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ernie1.common.errors import FieldError, ToolkitError

logger = logging.getLogger(__name__)


# The text layer's name for the tokenizer source in its errors (data_tools' --model_name).


def load_pretraining_tokenizer(source: str, extend: bool = True, field: str = "tokenizer_name_or_path") -> Any:
    """The tokenizer (directory, vocab file or built-in name) with the `##<CJK char>` extension the masking needs.

    Errors name `field` (the config field `source` came from).
    """
    from ernie1.text.tokenizer import extend_chinese_char, load_tokenizer

    placeholder = "{" + field + "}"
    try:
        # The text layer starts its messages with the name it is given: a placeholder the CLI renders as its flag.
        tokenizer = load_tokenizer(source, flag=placeholder)
    except FieldError:
        raise
    except ToolkitError as error:
        raise FieldError(field, str(error)) from None
    if extend:
        extend_chinese_char(tokenizer)
    return tokenizer


def base_vocab_size(tokenizer: Any) -> int:
    """Size of the tokenizer's base vocab (without the `##` extension): what the embedding must cover."""
    return int(tokenizer.vocab_size)


def data_prefixes(input_dir: str) -> List[Tuple[float, str]]:
    """(weight, prefix name) pairs of `--input_dir` (REFERENCE §5): what a resume must find unchanged."""
    from ernie1.data.builder import discover_prefixes

    return [(float(weight), Path(prefix).name) for weight, prefix in discover_prefixes(input_dir)]


class OrderedBatchSampler(paddle.io.BatchSampler):
    """In-order micro-batches for one data rank, starting at `consumed_samples`, dropping the incomplete tail.

    Each block of `micro_batch_size * data_world_size` indices is a global micro-batch; rank r takes slice r of it.
    Starting from `consumed_samples` skips exactly the data a previous run consumed, once (PaddleNLP #8980).
    """

    def __init__(
        self,
        num_samples: int,
        micro_batch_size: int,
        data_rank: int = 0,
        data_world_size: int = 1,
        consumed_samples: int = 0,
        wrap: bool = False,
    ):
        if consumed_samples % data_world_size:
            raise ValueError("consumed_samples must be a multiple of the data world size")
        self.num_samples = num_samples
        self.batch_size = micro_batch_size
        self.data_rank = data_rank
        self.data_world_size = data_world_size
        self.consumed_samples = consumed_samples
        # Evaluation streams wrap around instead of ending when a small valid split is exhausted.
        self.wrap = wrap
        self.drop_last = True

    @property
    def global_micro_batch(self) -> int:
        return self.batch_size * self.data_world_size

    def __iter__(self) -> Iterator[List[int]]:
        start = self.consumed_samples
        if self.wrap and self.num_samples >= self.global_micro_batch:
            start %= self.num_samples - self.num_samples % self.global_micro_batch
        while True:
            if start + self.global_micro_batch > self.num_samples:
                if not self.wrap or self.num_samples < self.global_micro_batch:
                    return
                start = 0
            first = start + self.data_rank * self.batch_size
            yield list(range(first, first + self.batch_size))
            start += self.global_micro_batch

    def __len__(self) -> int:
        remaining = max(0, self.num_samples - self.consumed_samples)
        return remaining // self.global_micro_batch


@dataclass
class PretrainingData:
    """The three splits (any may be None when empty) and how to batch them."""

    train: Any
    valid: Any
    test: Any
    collate_fn: Callable[[Sequence[dict]], dict]
    # Training batches only, when they differ (--pack_samples); evaluation keeps collate_fn's unpacked layout.
    train_collate_fn: Optional[Callable[[Sequence[dict]], dict]] = None

    @property
    def train_collate(self) -> Callable[[Sequence[dict]], dict]:
        """How training micro-batches are collated."""
        return self.train_collate_fn or self.collate_fn


def build_datasets(
    config, tokenizer, data_rank: int = 0, local_rank: int = 0, global_rank: int = 0
) -> Tuple[Any, Any, Any]:
    """(train, valid, test) datasets sized per REFERENCE §5 via ernie1.data.builder (None for an empty split)."""
    from ernie1.data.builder import build_train_valid_test_datasets

    return build_train_valid_test_datasets(
        config.data,
        tokenizer,
        num_samples=config.schedule.requested_samples(),
        data_rank=data_rank,
        local_rank=local_rank,
        global_rank=global_rank,
    )


def build_collate_fn(max_seq_length: int, pad_id: int, pack_samples: bool = False) -> Callable[[Sequence[dict]], dict]:
    """Collate unpadded samples into the batch dict the model takes (REFERENCE §8), padded to max_seq_length;
    `pack_samples`: packed into as few rows of max_seq_length as first-fit needs."""
    from ernie1.data.collate import collate_packed_pretraining_batch, collate_pretraining_batch

    collate = collate_packed_pretraining_batch if pack_samples else collate_pretraining_batch
    return functools.partial(collate, pad_to=max_seq_length, pad_id=pad_id)


# A collated batch that stands for a failure inside the data path carries its one-line message under this key.
FAILURE_KEY = "__data_failure__"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, ToolkitError) else f"{type(error).__name__}: {text}"


def checked_sample(dataset: Any, index: int) -> Any:
    """`dataset[index]`, a failure inside it being the one-line data error the loaders raise."""
    try:
        return dataset[index]
    except Exception as error:  # noqa: BLE001 - any failure of the data path is reported the same way
        raise ToolkitError(f"data error in sample {index}: {_one_line(error)}") from None


class ReportingDataset(paddle.io.Dataset):
    """A dataset whose `__getitem__` never raises: an exception becomes a failure record for the main thread.

    paddle's DataLoader loses exceptions raised in its prefetch thread (num_workers 0: the main loop waits
    forever) or turns them into `SystemError: Blocking queue is killed` (worker processes); a record travels.
    """

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as error:  # noqa: BLE001 - reported in the main thread by raise_data_failure
            return {FAILURE_KEY: f"sample {index}: {_one_line(error)}"}


def reporting_collate(collate_fn: Callable[[Sequence[Any]], Any]) -> Callable[[Sequence[Any]], Any]:
    """`collate_fn` that passes a failure record (or its own exception) on as a one-key batch."""

    def collate(samples: Sequence[Any]) -> Any:
        for sample in samples:
            if isinstance(sample, dict) and FAILURE_KEY in sample:
                return _failure_batch(sample[FAILURE_KEY])
        try:
            return collate_fn(samples)
        except Exception as error:  # noqa: BLE001 - reported in the main thread by raise_data_failure
            return _failure_batch(f"collating a batch: {_one_line(error)}")

    return collate


def _failure_batch(message: str) -> dict:
    # Bytes as an array: the loader turns every batch value into a tensor, also across worker processes.
    return {FAILURE_KEY: np.frombuffer(message.encode("utf-8"), dtype=np.uint8).copy()}


def raise_data_failure(batch: Any) -> Any:
    """The batch itself, or a ToolkitError with the message of the failure it stands for."""
    if isinstance(batch, dict) and FAILURE_KEY in batch:
        value = batch[FAILURE_KEY]
        # A paddle Tensor in dygraph, a DenseTensor in static mode, an ndarray in the Trainer's collate path.
        data = np.asarray(value.numpy() if hasattr(value, "numpy") else value).astype(np.uint8)
        raise ToolkitError(f"data error in {data.tobytes().decode('utf-8', 'replace')}")
    return batch


class CheckedLoader:
    """Iterates a DataLoader, raising the failures of its data path as ToolkitErrors in the consuming thread."""

    def __init__(self, loader: paddle.io.DataLoader):
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield raise_data_failure(batch)

    def __len__(self) -> int:
        return len(self.loader)


def make_loader(
    dataset: Any,
    collate_fn: Callable,
    micro_batch_size: int,
    data_rank: int,
    data_world_size: int,
    consumed_samples: int = 0,
    num_workers: int = 0,
    wrap: bool = False,
) -> Optional[CheckedLoader]:
    """A DataLoader over `dataset` in order from `consumed_samples` (data errors raised here); None if empty."""
    if dataset is None or len(dataset) == 0:
        return None
    sampler = OrderedBatchSampler(len(dataset), micro_batch_size, data_rank, data_world_size, consumed_samples, wrap)
    loader = paddle.io.DataLoader(
        ReportingDataset(dataset),
        batch_sampler=sampler,
        collate_fn=reporting_collate(collate_fn),
        num_workers=num_workers,
        return_list=True,
    )
    return CheckedLoader(loader)


class EvalStream:
    """One persistent iterator over an eval split: each evaluation continues where the last stopped (§18.13)."""

    def __init__(self, loader: Optional[CheckedLoader]):
        self.loader = loader
        self._iterator: Optional[Iterator] = None

    def take(self, count: int) -> Iterator[dict]:
        """Up to `count` next micro-batches (fewer only if the split is smaller than one global micro-batch)."""
        if self.loader is None:
            return
        if self._iterator is None:
            self._iterator = iter(self.loader)
        for _ in range(count):
            try:
                yield next(self._iterator)
            except StopIteration:
                return


def build_pretraining_data(config, placement, tokenizer) -> PretrainingData:
    """The three splits sized by the schedule, and the collate function."""
    # No barrier here: the builder lets one rank build each index map while the others wait for the file with a
    # timeout, so a rank that fails cannot leave the others blocked in a collective forever.
    train, valid, test = build_datasets(config, tokenizer, placement.data_rank, placement.local_rank, placement.rank)
    if config.schedule.train and (train is None or len(train) == 0):
        raise FieldError(
            "input_dir", f"{{input_dir}} {config.data.input_dir}: the train split is empty (check {{split}})", "split"
        )
    collate = build_collate_fn(config.data.max_seq_length, tokenizer.pad_token_id)
    train_collate = None
    if config.runtime.pack_samples:
        train_collate = build_collate_fn(config.data.max_seq_length, tokenizer.pad_token_id, pack_samples=True)
    return PretrainingData(train, valid, test, collate, train_collate)
