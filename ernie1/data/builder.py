"""From `--input_dir` to the train/valid/test datasets: prefixes, document splits, cached index maps, blending.

REFERENCE §3 (index-map cache) and §5 (prefixes, splits, blending). Entry point for the training scripts:
`build_train_valid_test_datasets(config, tokenizer, num_samples)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Optional, Sequence, TypeVar

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import IDS_SUFFIX, IDX_SUFFIX, INDEX_MAP_SUFFIX, INDEX_MAP_TAG
from ernie1.data import index_helpers
from ernie1.data.blending import BlendableDataset, samples_per_dataset
from ernie1.data.indexed_dataset import MMapIndexedDataset
from ernie1.data.knowledge_spans import load_knowledge_spans

if TYPE_CHECKING:
    from ernie1.data.dataset_config import ErnieDatasetConfig

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "valid", "test")
# Room for [CLS] A [SEP] B [SEP] (REFERENCE §6).
NUM_SPECIAL_TOKENS = 3
# The original seeded sample k of every split with seed + k, so train, valid and test shared masks (REFERENCE
# §18.7). Split seeds 2**30 apart keep the streams apart even for a dataset that draws with (split_seed + index).
SPLIT_SEED_OFFSETS = {"train": 0, "valid": 1 << 30, "test": 2 << 30}
CACHE_POLL_INTERVAL_S = 0.5
T = TypeVar("T")


def split_seed(seed: int, name: str) -> int:
    """The base seed of a split's per-sample randomness: `seed` for train, distinct values for valid and test."""
    return (int(seed) + SPLIT_SEED_OFFSETS[name]) % (1 << 32)


def discover_prefixes(input_dir: str) -> list[tuple[float, str]]:
    """(weight, prefix) pairs from `--input_dir`: a directory of `*_idx.npz`, one prefix, or `"w1 p1 w2 p2 ..."`."""
    tokens = input_dir.split()
    if len(tokens) > 1:
        return _weighted_prefixes(input_dir, tokens)
    if not tokens:
        raise ToolkitError("--input_dir is empty: give a directory of *_idx.npz files or a data prefix")
    path = Path(tokens[0])
    if path.is_dir():
        return _prefixes_in_directory(path)
    prefix = _strip_data_suffix(tokens[0])
    if not Path(prefix + IDX_SUFFIX).is_file():
        raise ToolkitError(
            f"--input_dir {input_dir}: neither a directory nor a data prefix ({prefix}{IDX_SUFFIX} not found); "
            f"expected the <prefix>{IDS_SUFFIX} + <prefix>{IDX_SUFFIX} written by create_pretraining_data.py"
        )
    return [(1.0, prefix)]


def _strip_data_suffix(path: str) -> str:
    for suffix in (IDX_SUFFIX, IDS_SUFFIX):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _prefixes_in_directory(directory: Path) -> list[tuple[float, str]]:
    # Sorted, so every rank and every run blends in the same order (the original used os.listdir order).
    found = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(IDX_SUFFIX))
    if not found:
        megatron = sorted(p.name for p in directory.iterdir() if p.suffix in (".idx", ".bin"))
        hint = (
            f"; found {', '.join(megatron[:3])} in the PaddleNLP 2.6+ .bin/.idx format, which this toolkit does not "
            "read: re-run create_pretraining_data.py"
            if megatron
            else ""
        )
        # PaddleNLP #6716: the original failed later with a bare `assert weight_sum > 0`.
        raise ToolkitError(
            f"--input_dir {directory}: no data file found (expected <prefix>{IDS_SUFFIX} + <prefix>{IDX_SUFFIX} "
            f"pairs written by create_pretraining_data.py){hint}"
        )
    return [(1.0, str(path)[: -len(IDX_SUFFIX)]) for path in found]


def _weighted_prefixes(input_dir: str, tokens: Sequence[str]) -> list[tuple[float, str]]:
    if len(tokens) % 2:
        raise ToolkitError(f"--input_dir '{input_dir}': expected pairs 'weight1 prefix1 weight2 prefix2 ...'")
    pairs = []
    for weight_text, prefix in zip(tokens[::2], tokens[1::2]):
        try:
            weight = float(weight_text)
        except ValueError:
            raise ToolkitError(
                f"--input_dir '{input_dir}': '{weight_text}' is not a weight; expected 'weight1 prefix1 weight2 ...'"
            ) from None
        if not np.isfinite(weight) or weight <= 0:
            raise ToolkitError(
                f"--input_dir '{input_dir}': weight {weight_text} of {prefix} must be a positive number"
            )
        pairs.append((weight, _strip_data_suffix(prefix)))
    return pairs


def _parse_split(splits_string: str) -> list[float]:
    separator = "," if "," in splits_string else "/"
    try:
        splits = [float(part) for part in splits_string.split(separator) if part.strip()]
    except ValueError:
        raise ToolkitError(f"--split {splits_string}: expected up to three numbers such as 949,50,1") from None
    splits = (splits + [0.0, 0.0])[:3]
    if any(not np.isfinite(s) or s < 0 for s in splits) or sum(splits) <= 0:
        raise ToolkitError(f"--split {splits_string}: shares must be non-negative numbers, not all zero")
    total = sum(splits)
    return [s / total for s in splits]


def get_train_valid_test_split_(splits_string: str, size: int) -> list[int]:
    """Document boundaries [0, b1, b2, size] of the train/valid/test splits, rounded as the original does."""
    boundaries = [0]
    for fraction in _parse_split(splits_string):
        boundaries.append(boundaries[-1] + int(round(fraction * float(size))))
    excess = boundaries[-1] - size
    shifted = [boundaries[0]] + [b - excess for b in boundaries[1:]]
    # Only degenerate splits (a zero share next to two halves on tiny corpora) could go below 0 or backwards.
    return list(np.maximum.accumulate(np.maximum(shifted, 0)).tolist())


@dataclass(frozen=True)
class IndexMapSpec:
    """Everything that determines one split's index map, and so its cache file name.

    `corpus_fingerprint` is `MMapIndexedDataset.fingerprint` (a hash of `lens` and `docs`): a corpus regenerated at
    the same prefix gets a new cache, never the stale map of the old data (the original's name left the data out).
    Masking settings are not part of it: the map only says which sentences form a sample.
    """

    name: str
    max_seq_length: int
    short_seq_prob: float
    seed: int
    min_num_sent: int
    doc_range: tuple[int, int]
    corpus_fingerprint: str
    num_epochs: Optional[int] = None
    max_num_samples: Optional[int] = None

    def cache_key(self) -> str:
        """16 hex digits of a hash of every field and of the index helper's version."""
        fields = dataclasses.asdict(self)
        fields["mapping_version"] = index_helpers.MAPPING_VERSION
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def filename(self, prefix: str) -> str:
        """`<prefix>_<name>_indexmap[_<E>ep][_<N>mns]_<L>msl_<ssp>ssp_<seed>s_<cache_key>.npy`.

        The readable part is the original's name; the key covers what that name leaves out (the data, the split's
        documents, the exact short_seq_prob, binary_head), so a cache is only ever found by the inputs it was built
        from.
        """
        name = f"{prefix}_{self.name}{INDEX_MAP_TAG}"
        if self.num_epochs is not None and self.num_epochs != index_helpers.NUM_EPOCHS_SENTINEL:
            name += f"_{self.num_epochs}ep"
        if self.max_num_samples is not None and self.max_num_samples != index_helpers.MAX_NUM_SAMPLES_SENTINEL:
            name += f"_{self.max_num_samples}mns"
        name += f"_{self.max_seq_length}msl_{self.short_seq_prob:0.2f}ssp_{self.seed}s_{self.cache_key()}"
        return name + INDEX_MAP_SUFFIX


def get_samples_mapping(
    indexed: MMapIndexedDataset,
    spec: IndexMapSpec,
    builds: bool,
    wait_timeout_s: float,
    verbose: bool = False,
) -> np.ndarray:
    """The split's [N,3] index map from its cache file, built first by the one rank with `builds` (mmap, read-only).

    Other ranks poll until the file appears (it is written to a temporary name and renamed, so it appears
    complete) and give up after `wait_timeout_s` with an error naming the file. Every rank, the builder included,
    returns the read-only memory map of the file: the pages are the page cache's, shared by all ranks of a node.
    """
    path = spec.filename(indexed.prefix)
    if builds and not os.path.isfile(path):
        _build_index_map(path, indexed, spec, verbose)
    elif not builds:
        _wait_for_file(path, wait_timeout_s)
    return _check_index_map(path, _load_index_map(path), indexed, spec)


def _build_index_map(path: str, indexed: MMapIndexedDataset, spec: IndexMapSpec, verbose: bool) -> None:
    # The native code writes the rows into the cache file itself and frees them before returning, so this rank never
    # holds the map twice (a seed-scale map is 6 GB); afterwards it maps the file like every other rank.
    start, end = spec.doc_range
    began = time.perf_counter()
    shape = _save_atomically(
        path,
        lambda handle: index_helpers.write_mapping(
            handle,
            indexed.doc_idx[start : end + 1],
            indexed.sizes,
            max_seq_length=spec.max_seq_length,
            short_seq_prob=spec.short_seq_prob,
            seed=spec.seed,
            min_num_sent=spec.min_num_sent,
            num_epochs=spec.num_epochs,
            max_num_samples=spec.max_num_samples,
            verbose=verbose,
        ),
    )
    logger.info(
        "built %s index map: %d samples (%.2f GB) from documents [%d, %d) in %.2f s -> %s",
        spec.name,
        shape[0],
        os.path.getsize(path) / 1e9,
        start,
        end,
        time.perf_counter() - began,
        path,
    )


def _save_atomically(path: str, write: Callable[[BinaryIO], T]) -> T:
    """`write(handle)` into a temporary file renamed to `path` once complete; its result."""
    # Unique per writer: without share_folder, ranks on several nodes may still write to one shared directory.
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with open(temporary, "wb") as handle:
            result = write(handle)
        os.replace(temporary, path)
    except OSError as error:
        raise ToolkitError(
            f"{path}: cannot write the index-map cache ({error.strerror}); the directory of --input_dir must be "
            "writable"
        ) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return result


def _wait_for_file(path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.isfile(path):
        if time.monotonic() >= deadline:
            raise ToolkitError(
                f"{path}: index map not written after {timeout_s:g} s of waiting for the rank that builds it "
                "(local rank 0, or global rank 0 with share_folder); check that rank's log, or raise "
                "cache_wait_timeout_s"
            )
        time.sleep(CACHE_POLL_INTERVAL_S)


def _load_index_map(path: str) -> np.ndarray:
    try:
        mapping = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ToolkitError(f"{path}: unreadable index-map cache ({error}); delete it to rebuild") from None
    if mapping.ndim != 2 or mapping.shape[1] != 3 or mapping.dtype not in (np.uint32, np.uint64) or not len(mapping):
        raise ToolkitError(
            f"{path}: not an index map (shape {mapping.shape}, dtype {mapping.dtype}; expected [N,3] uint32 or "
            "uint64); delete it to rebuild"
        )
    return mapping


# Rows of a found cache checked against the corpus: enough to catch a foreign or damaged file, cheap for any size.
CHECKED_ROWS = 1 << 16


def _check_index_map(path: str, mapping: np.ndarray, indexed: MMapIndexedDataset, spec: IndexMapSpec) -> np.ndarray:
    """`mapping`, after checking that it fits `spec`: enough rows, each one within one document of the split."""
    if spec.max_num_samples is not None and len(mapping) < spec.max_num_samples:
        raise ToolkitError(
            f"{path}: {len(mapping)} rows for {spec.max_num_samples} requested samples; delete it to rebuild"
        )
    picked = np.unique(np.linspace(0, len(mapping) - 1, min(len(mapping), CHECKED_ROWS)).astype(np.int64))
    rows = _read_rows(path, mapping, picked)
    start_doc, end_doc = spec.doc_range
    docs = indexed.doc_idx[start_doc : end_doc + 1]
    first, last = rows[:, 0], rows[:, 1] - 1
    owner = np.searchsorted(docs, first, side="right") - 1
    bad = (first > last) | (first < docs[0]) | (rows[:, 1] > docs[-1])
    bad |= owner != np.searchsorted(docs, last, side="right") - 1
    if np.any(bad):
        row = int(picked[np.argmax(bad)])
        raise ToolkitError(
            f"{path}: row {row} (sentences {int(mapping[row, 0])} to {int(mapping[row, 1])}) does not lie within one "
            f"document of the {spec.name} split of {indexed.prefix}{IDX_SUFFIX}; delete it to rebuild"
        )
    return mapping


def _read_rows(path: str, mapping: np.memmap, picked: np.ndarray) -> np.ndarray:
    """Rows `picked` of the memory-mapped `mapping`, as int64, read from the file rather than through the map.

    Touching 65,536 rows spread over the map would fault in (and count as this rank's memory) nearly every page of
    it: the kernel maps 16 cached pages around each fault.
    """
    row_bytes = mapping.itemsize * mapping.shape[1]
    chunks = []
    with open(path, "rb", buffering=0) as handle:
        for row in picked.tolist():
            handle.seek(mapping.offset + row * row_bytes)
            chunks.append(handle.read(row_bytes))
    data = b"".join(chunks)
    return np.frombuffer(data, dtype=mapping.dtype).reshape(len(picked), mapping.shape[1]).astype(np.int64)


@dataclass(frozen=True)
class _Ranks:
    local_rank: int
    global_rank: int

    def builds_cache(self, share_folder: bool) -> bool:
        # With a shared folder one process in the whole job builds; otherwise one per node.
        return self.global_rank == 0 if share_folder else self.local_rank == 0

    def log(self, level: int, message: str, *args: Any) -> None:
        if self.global_rank == 0:
            logger.log(level, message, *args)


def _split_spec(
    config: "ErnieDatasetConfig", indexed: MMapIndexedDataset, name: str, doc_range: tuple[int, int], count: int
) -> IndexMapSpec:
    return IndexMapSpec(
        name=name,
        max_seq_length=config.max_seq_length - NUM_SPECIAL_TOKENS,
        short_seq_prob=config.short_seq_prob,
        seed=config.seed,
        min_num_sent=2 if config.binary_head else 1,
        doc_range=doc_range,
        corpus_fingerprint=indexed.fingerprint,
        max_num_samples=count,
    )


def _prefix_datasets(
    prefix: str, config: "ErnieDatasetConfig", num_samples: Sequence[int], vocab_factory, ranks: _Ranks
) -> list[Optional[Any]]:
    from ernie1.data.dataset import ErnieDataset, check_ids_fit_vocab

    indexed = MMapIndexedDataset(prefix)
    if any(int(n) > 0 for n in num_samples):
        check_ids_fit_vocab(indexed, vocab_factory().size)  # before any index map is built
    num_docs = len(indexed.doc_idx) - 1
    boundaries = get_train_valid_test_split_(config.split, num_docs)
    wanted = config.needs_knowledge and any(int(n) > 0 for n in num_samples)
    knowledge = load_knowledge_spans(indexed.prefix, indexed.sizes) if wanted else None
    datasets: list[Optional[Any]] = []
    for index, name in enumerate(SPLIT_NAMES):
        start, end = boundaries[index], boundaries[index + 1]
        count = int(num_samples[index])
        spec = _split_spec(config, indexed, name, (start, end), count)
        # An existing cache proves the split usable; otherwise every rank checks, so all fail fast alike.
        if count <= 0 or (
            not os.path.isfile(spec.filename(prefix))
            and not _split_has_usable_documents(prefix, config, name, indexed, (start, end), ranks)
        ):
            datasets.append(None)
            continue
        mapping = get_samples_mapping(
            indexed, spec, ranks.builds_cache(config.share_folder), config.cache_wait_timeout_s
        )
        datasets.append(
            ErnieDataset(name, indexed, mapping, config, vocab_factory(), knowledge, split_seed(config.seed, name))
        )
        ranks.log(
            logging.INFO, "%s: %s split documents [%d, %d) -> %d samples", prefix, name, start, end, len(mapping)
        )
    return datasets


def _split_has_usable_documents(
    prefix: str,
    config: "ErnieDatasetConfig",
    name: str,
    indexed: MMapIndexedDataset,
    doc_range: tuple[int, int],
    ranks: _Ranks,
) -> bool:
    """False (with one warning) for an empty valid/test split; a train split without usable documents is an error."""
    start, end = doc_range
    min_num_sent = 2 if config.binary_head else 1
    stats = index_helpers.document_stats(indexed.doc_idx[start : end + 1], indexed.sizes, min_num_sent)
    if stats.usable:
        return True
    if name == "train":
        reason = index_helpers.no_usable_document_message(stats, min_num_sent)
        raise ToolkitError(f"{prefix}: train split (documents {start} to {end} of --split {config.split}): {reason}")
    # PaddleNLP #2572/#2557: an empty split crashed later with `NoneType has no len()`.
    why = "is empty" if end == start else "has no usable document"
    ranks.log(
        logging.WARNING,
        "%s: the %s split %s (--split %s over %d documents gives documents [%d, %d)); no %s dataset. "
        "Use more documents or a larger %s share in --split",
        prefix,
        name,
        why,
        config.split,
        len(indexed.doc_idx) - 1,
        start,
        end,
        name,
        name,
    )
    return False


def build_train_valid_test_datasets(
    config: "ErnieDatasetConfig",
    tokenizer: Any,
    num_samples: tuple[int, int, int],
    data_rank: int = 0,
    local_rank: int = 0,
    global_rank: int = 0,
) -> tuple[Optional[Any], Optional[Any], Optional[Any]]:
    """(train, valid, test) datasets of at least the requested sample counts; None for an empty or unrequested split.

    `tokenizer` is the paddlenlp tokenizer the corpus was encoded with (or a ready `MaskingVocab`).

    `data_rank` is accepted for the entry points' convenience: every data-parallel rank sees the same datasets
    (the sampler shards them), so only `local_rank`/`global_rank` matter here, to pick the rank that builds caches.
    """
    del data_rank
    if len(num_samples) != 3 or any(int(n) < 0 for n in num_samples):
        raise ValueError(f"num_samples must be three non-negative counts, got {num_samples}")
    ranks = _Ranks(local_rank=local_rank, global_rank=global_rank)
    vocab_cache: list[Any] = []

    def vocab_factory() -> Any:
        if not vocab_cache:
            from ernie1.data.masking import MaskingVocab

            is_vocab = isinstance(tokenizer, MaskingVocab)
            vocab_cache.append(tokenizer if is_vocab else MaskingVocab.from_tokenizer(tokenizer))
        return vocab_cache[0]

    schedule = config.schedule()
    if schedule is not None:
        ranks.log(
            logging.INFO,
            "masking schedule over %d steps: %s; valid/test samples: %s",
            schedule.max_steps,
            schedule.describe(),
            schedule.levels[-1],
        )
    prefixes = discover_prefixes(config.input_dir)
    if len(prefixes) == 1:
        return tuple(_prefix_datasets(prefixes[0][1], config, num_samples, vocab_factory, ranks))
    weights = [weight for weight, _ in prefixes]
    per_prefix = [
        _prefix_datasets(prefix, config, counts, vocab_factory, ranks)
        for (_, prefix), counts in zip(prefixes, samples_per_dataset(num_samples, weights))
    ]
    return tuple(
        _blend(name, [datasets[index] for datasets in per_prefix], weights, int(num_samples[index]), ranks)
        for index, name in enumerate(SPLIT_NAMES)
    )


def _blend(name: str, datasets: Sequence[Optional[Any]], weights: Sequence[float], size: int, ranks: _Ranks):
    present = [(dataset, weight) for dataset, weight in zip(datasets, weights) if dataset is not None]
    if size <= 0 or not present:
        return None
    if len(present) < len(datasets):
        ranks.log(
            logging.WARNING,
            "%s: blending %d of %d corpora (the others have no %s split)",
            name,
            len(present),
            len(datasets),
            name,
        )
    return BlendableDataset([d for d, _ in present], [w for _, w in present], size, name)
