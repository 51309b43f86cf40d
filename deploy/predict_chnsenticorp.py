"""Sentiment prediction with a classifier exported by `finetune/run_seq_cls.py --do_export`.

    python deploy/predict_chnsenticorp.py --model_dir finetune/tmp/chnsenticorp_v2/export [TEXT ...]
    python deploy/predict_chnsenticorp.py --model_dir ... --input_file reviews.txt     # one text per line; - = stdin

Prints `Data: <text> \t Label: <label>` per text, in input order, one line per input. Without texts (no arguments, no
--input_file) it predicts the original example's three ChnSentiCorp reviews; an empty text is an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (also from finetune/): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import time  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

from deploy.inputs import read_texts  # noqa: E402
from deploy.predict import predict_lines  # noqa: E402
from deploy.predictor import ExportedModel, add_predictor_flags  # noqa: E402
from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402

EXAMPLE_TEXTS = [
    "东西不错，不过有人不太喜欢镜面的，我个人比较喜欢，总之还算满意。",
    "房间不错,只是上网速度慢得无法忍受,打开一个网页要等半小时,连邮件都无法收。另前台工作人员服务态度是很好，只是效率有得改善。",
    "挺失望的,还不如买一本张爱玲文集呢,以<色戒>命名,可这篇文章仅仅10多页,且无头无尾的,完全比不上里面的任意一篇其它文章.",
]


def build_parser() -> argparse.ArgumentParser:
    """The original's deploy flags (TensorRT/precision are GPU-only and not offered) plus text sources."""
    parser = argparse.ArgumentParser(description="Predict sentiment with an exported ERNIE classifier.")
    parser.add_argument("texts", nargs="*", help="Texts to classify (default: three example reviews).")
    parser.add_argument("--model_dir", default="./export/", help="Export directory (inference.json, vocab.txt, ...).")
    parser.add_argument("--input_file", default=None, help="File with one text per line; '-' reads stdin.")
    add_predictor_flags(parser, batch_size=2)
    parser.add_argument("--benchmark", action="store_true", help="Also print texts/s over 10 passes.")
    return parser


def collect_texts(args: argparse.Namespace) -> List[str]:
    """Positional texts and --input_file lines, or the example reviews when neither is given."""
    if not args.texts and not args.input_file:
        return list(EXAMPLE_TEXTS)
    return read_texts(args.texts, args.input_file)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Load the export, classify the texts in batches, print one line per text."""
    args = build_parser().parse_args(argv)
    model = ExportedModel.load(args.model_dir, args.device, args.cpu_threads, args.enable_mkldnn)
    if model.task.name != "seq_cls":
        raise ToolkitError(f"--model_dir {args.model_dir}: a {model.task.name} export; use deploy/predict.py for it")
    settings = model.settings(args.max_seq_length)
    texts = collect_texts(args)
    for line in predict_lines(model, texts, args.batch_size, settings):
        print(line)
    if args.benchmark:
        start = time.perf_counter()
        for _ in range(10):
            model.predict(texts, args.batch_size, settings)
        elapsed = time.perf_counter() - start
        print(
            f"benchmark: {10 * len(texts) / elapsed:.1f} texts/s (batch_size {args.batch_size}, {args.device or 'auto'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
