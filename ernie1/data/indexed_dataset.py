"""The on-disk pretraining corpus: `<prefix>_ids.npy` (flat token ids) + `<prefix>_idx.npz` (`lens`, `docs`).

Format (compatible with the original loader): `lens` int32 [num_sentences] tokens per sentence; `docs` int64
[num_docs+1] cumulative sentence counts with docs[0] == 0 and docs[-1] == num_sentences; sum(lens) == len(ids).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Optional, Sequence, Union

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.common.files import ScratchFiles, make_output_dir, write_errors_as
from ernie1.common.formats import IDS_SUFFIX, IDX_SUFFIX

INDEX_ARRAYS = ("lens", "docs")
# Optional third array of `_idx.npz` (ours; the original's reader ignores it): the largest id in `_ids.npy`, so a
# vocab check at training start needs no scan of the ids. Files without it are scanned instead.
MAX_ID_ARRAY = "max_id"
# What np.load raises on a damaged .npz: a truncated zip (BadZipFile), a bad member (ValueError, EOFError, zlib).
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def load_npz_arrays(path: Path, names: Sequence[str], optional: Sequence[str] = ()) -> Dict[str, np.ndarray]:
    """The arrays `names` (and those of `optional` present) of the .npz file `path`, read into memory; a one-line
    ToolkitError naming the file if it is missing an array, truncated or otherwise unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in names if name not in data.files]
            if missing:
                raise ToolkitError(f"{path}: missing arrays {', '.join(missing)} (expected {', '.join(names)})")
            wanted = [*names, *(name for name in optional if name in data.files)]
            return {name: np.asarray(data[name]) for name in wanted}
    except _NPZ_ERRORS as error:
        raise ToolkitError(f"{path}: not a readable .npz file ({error}); re-run create_pretraining_data.py") from None


# A fixed member timestamp (zip's earliest) makes equal arrays give equal files, whenever they are written.
_NPZ_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


# Bytes per read when a scratch file is copied into an output: memory per copy, whatever the corpus size.
_COPY_CHUNK_BYTES = 1 << 24


@dataclass(frozen=True)
class RawArray:
    """A 1-D array stored as raw bytes in a (scratch) file; `save_npz` streams it in chunks instead of loading it."""

    path: Path
    dtype: np.dtype

    def header(self) -> dict:
        """The .npy header np.save writes for this array, loaded."""
        length = os.path.getsize(self.path) // np.dtype(self.dtype).itemsize
        return {
            "descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)),
            "fortran_order": False,
            "shape": (length,),
        }


def copy_file_into(path: Path, out: BinaryIO) -> None:
    """Append the bytes of the file `path` to `out`, one fixed buffer at a time."""
    buffer = memoryview(bytearray(_COPY_CHUNK_BYTES))
    with open(path, "rb", buffering=0) as source:
        while count := source.readinto(buffer):
            out.write(buffer[:count])


def save_npz(handle: BinaryIO, arrays: Dict[str, Union[np.ndarray, RawArray]]) -> None:
    """Write `arrays` in np.savez's format (uncompressed .npy members) to the open binary `handle`.

    A `RawArray` member is copied from its file in chunks, so the peak memory does not grow with its size (the
    corpus' `lens` is 4 bytes per sentence: 600 MB for 150 M sentences); the bytes are those np.savez writes.
    Unlike np.savez, the zip is closed on every path: after a failed write (a full disk) np.savez leaves it open,
    and its destructor later writes to the closed file and prints a traceback.
    """
    archive = zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(name + ".npy", date_time=_NPZ_MEMBER_TIME)
            with archive.open(member, "w", force_zip64=True) as out:
                if isinstance(array, RawArray):
                    np.lib.format.write_array_header_1_0(out, array.header())
                    copy_file_into(array.path, out)
                else:
                    np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=False)
    except BaseException:
        with contextlib.suppress(Exception):
            archive.close()
        raise
    archive.close()


def ids_dtype_for_vocab(extended_vocab_size: int) -> np.dtype:
    """uint16 while every id (including the added `##` chars) fits, else int32 (REFERENCE §18.8)."""
    return np.dtype(np.uint16) if extended_vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def data_paths(prefix: str) -> tuple[Path, Path]:
    return Path(prefix + IDS_SUFFIX), Path(prefix + IDX_SUFFIX)


class MMapIndexedDataset:
    """Read-only, memory-mapped view of one prefix; `ds[i]` is sentence i as a numpy view."""

    def __init__(self, prefix: str):
        ids_path, idx_path = data_paths(prefix)
        for path in (idx_path, ids_path):
            if not path.is_file():
                raise ToolkitError(f"{path}: data file not found (expected {ids_path.name} and {idx_path.name})")
        index = load_npz_arrays(idx_path, INDEX_ARRAYS, optional=(MAX_ID_ARRAY,))
        self._sizes = np.asarray(index["lens"], dtype=np.int32)
        self._doc_idx = np.asarray(index["docs"], dtype=np.int64)
        self._max_id = int(index[MAX_ID_ARRAY]) if MAX_ID_ARRAY in index else None
        try:
            self._ids = np.load(ids_path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise ToolkitError(f"{ids_path}: not a readable .npy array ({error})") from None
        self.prefix = prefix
        self._fingerprint: Optional[str] = None
        self._validate(ids_path, idx_path)
        self._pointers = np.zeros(len(self._sizes) + 1, dtype=np.int64)
        np.cumsum(self._sizes, out=self._pointers[1:])

    def _validate(self, ids_path: Path, idx_path: Path) -> None:
        docs, sizes = self._doc_idx, self._sizes
        if self._ids.ndim != 1:
            raise ToolkitError(f"{ids_path}: expected a 1-D id array, got shape {self._ids.shape}")
        if len(docs) == 0 or docs[0] != 0 or docs[-1] != len(sizes) or np.any(np.diff(docs) < 0):
            raise ToolkitError(
                f"{idx_path}: 'docs' must rise from 0 to the sentence count {len(sizes)}; the index is corrupt"
            )
        total = int(sizes.sum(dtype=np.int64))
        if total != len(self._ids):
            raise ToolkitError(
                f"{idx_path}: 'lens' sums to {total} tokens but {ids_path.name} holds {len(self._ids)}; "
                "the two files do not belong together (re-run create_pretraining_data.py)"
            )

    def __len__(self) -> int:
        return len(self._sizes)

    def __getitem__(self, sentence: int) -> np.ndarray:
        return self._ids[self._pointers[sentence] : self._pointers[sentence + 1]]

    def get(self, sentence: int, offset: int = 0, length: Optional[int] = None) -> np.ndarray:
        start = self._pointers[sentence] + offset
        end = self._pointers[sentence + 1] if length is None else start + length
        return self._ids[start:end]

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes

    @property
    def doc_idx(self) -> np.ndarray:
        return self._doc_idx

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    @property
    def max_id(self) -> int:
        """The largest token id of the corpus: stored in `_idx.npz` by our writer, else one scan of the ids."""
        if self._max_id is None:
            self._max_id = int(np.max(self._ids)) if len(self._ids) else -1
        return self._max_id

    @property
    def fingerprint(self) -> str:
        """sha256 of `lens` and `docs` (hex): what the index maps of this corpus depend on (cached per instance)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for array in (np.ascontiguousarray(self._sizes, np.int32), np.ascontiguousarray(self._doc_idx, np.int64)):
                digest.update(np.int64(len(array)).tobytes())
                digest.update(memoryview(array))
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def pointers(self) -> np.ndarray:
        """int64 token offset of each sentence, with a trailing total."""
        return self._pointers


class IndexedDatasetWriter:
    """Streams documents to disk; files appear under their final names only in `finalize()` (atomic rename)."""

    def __init__(self, prefix: str, dtype: np.dtype):
        self.prefix = prefix
        self.dtype = np.dtype(dtype)
        self._ids_path, self._idx_path = data_paths(prefix)
        self._label = f"--output_prefix {prefix}"
        make_output_dir(self._ids_path.parent, self._label)
        # Ids, sentence lengths and document ends all stream to scratch files, so memory stays flat with corpus size.
        with write_errors_as(self._label):
            self._scratch = ScratchFiles(self._ids_path, streams=("raw", "lens", "docs"), temporaries=("ids", "idx"))
            self._raw, self._lens, self._docs = (self._scratch.streams[name] for name in ("raw", "lens", "docs"))
            self._docs.write(np.int64(0).tobytes())
        self.num_tokens = 0
        self.num_sentences = 0
        self.num_documents = 0
        self.max_id = -1

    def add_document(self, sentences: Iterable[Sequence[int]]) -> None:
        """Append one document (a list of sentences of ids); empty sentences and empty documents are dropped."""
        with write_errors_as(self._label):
            self._add_document(sentences)

    def _add_document(self, sentences: Iterable[Sequence[int]]) -> None:
        lengths = []
        for sentence in sentences:
            if len(sentence) == 0:
                continue
            array = np.asarray(sentence, dtype=self.dtype)
            self._raw.write(array.tobytes())
            lengths.append(len(array))
            self.max_id = max(self.max_id, int(array.max()))
        if lengths:
            self._lens.write(np.asarray(lengths, dtype=np.int32).tobytes())
            self.num_tokens += sum(lengths)
            self.num_sentences += len(lengths)
            self.num_documents += 1
            self._docs.write(np.int64(self.num_sentences).tobytes())

    def finalize(self) -> None:
        """Write `_ids.npy` (header + streamed ids, no second copy in memory) and `_idx.npz`, each via a rename.

        On a write error (e.g. a full disk) a one-line ToolkitError; call `abort()` then to remove the scratch files.
        """
        with write_errors_as(self._label):
            self._finalize()

    def _finalize(self) -> None:
        self._scratch.close()
        paths = self._scratch.paths
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.num_tokens,),
        }
        with open(paths["ids"], "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            copy_file_into(paths["raw"], out)
        # Streamed from the scratch files: loading them made the peak memory grow with the corpus at the very end.
        lens, docs = RawArray(paths["lens"], np.dtype(np.int32)), RawArray(paths["docs"], np.dtype(np.int64))
        with open(paths["idx"], "wb") as out:
            save_npz(out, {"lens": lens, "docs": docs, MAX_ID_ARRAY: np.int64(self.max_id)})
        os.replace(paths["ids"], self._ids_path)
        os.replace(paths["idx"], self._idx_path)
        self._scratch.discard()

    def abort(self) -> None:
        """Drop everything written so far; no output or scratch file is left behind, and this never raises."""
        self._scratch.discard()
