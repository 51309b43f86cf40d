"""Turn the logs of a pretraining run into one PNG: losses (train and valid), the learning rate, and the valid quality
figures (masked-token accuracy against the unigram baseline, SOP accuracy, token-state cosine).

    python tools/plot_curves.py --log_dir output/ernie-1.0-dp8-gb512 --output curves.png

`--log_dir` may be the run's output_dir (its `metrics.jsonl`, which all three entry points write, is read when
present), its `runs/` folder, one VisualDL run folder or one `vdlrecords.*.log` file. A resumed run appends to
metrics.jsonl and writes a new folder under `runs/`; both are merged by step (the later run wins on overlapping steps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402

LOSS_TAGS = ("train/loss", "train/lm_loss", "train/sop_loss", "valid/loss", "valid/lm_loss")
LR_TAG = "train/learning_rate"
QUALITY_TAGS = ("valid/masked_accuracy", "valid/sop_accuracy", "valid/token_cosine")
BASELINE_TAG = "baseline/unigram_masked_accuracy"
ALL_TAGS = (*LOSS_TAGS, LR_TAG, *QUALITY_TAGS, BASELINE_TAG)
METRICS_FILE = "metrics.jsonl"
Curve = List[Tuple[int, float]]


def find_log_files(log_dir: str) -> List[Path]:
    """VisualDL record files under `log_dir`, oldest first (by modification time)."""
    path = Path(log_dir)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ToolkitError(f"--log_dir {log_dir}: no such file or directory")
    files = sorted(path.rglob("vdlrecords.*.log"), key=lambda p: (p.stat().st_mtime, str(p)))
    if not files:
        raise ToolkitError(f"--log_dir {log_dir}: no VisualDL log (vdlrecords.*.log) found; pass the run's output_dir")
    return files


def read_scalars(files: Sequence[Path], tags: Sequence[str]) -> Dict[str, Curve]:
    """{tag: [(step, value), ...]} merged over `files`, sorted by step."""
    from visualdl import LogReader

    merged: Dict[str, Dict[int, float]] = {tag: {} for tag in tags}
    for file in files:
        reader = LogReader(file_path=str(file))
        available = set(reader.get_tags().get("scalar", []))
        for tag in tags:
            if tag in available:
                for record in reader.get_data("scalar", tag):
                    merged[tag][int(record.id)] = float(record.value)
    return {tag: sorted(points.items()) for tag, points in merged.items() if points}


def read_metrics_file(path: Path, tags: Sequence[str] = ALL_TAGS) -> Dict[str, Curve]:
    """{tag: [(step, value), ...]} from a run's metrics.jsonl (records `split`/`step`/values; `start` records hold
    the baseline), under the VisualDL tag names."""
    import json

    merged: Dict[str, Dict[int, float]] = {tag: {} for tag in tags}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        prefix = "baseline" if record.get("split") == "start" else record.get("split")
        for key, value in record.items():
            tag = f"{prefix}/{key}"
            if tag in merged and isinstance(value, (int, float)):
                merged[tag][int(record["step"])] = float(value)
    return {tag: sorted(points.items()) for tag, points in merged.items() if points}


def read_curves(log_dir: str) -> Dict[str, Curve]:
    """The run's metrics.jsonl if `log_dir` holds one, else its VisualDL records."""
    metrics = Path(log_dir) / METRICS_FILE
    if metrics.is_file():
        return read_metrics_file(metrics)
    return read_scalars(find_log_files(log_dir), ALL_TAGS)


def plot_curves(curves: Dict[str, Curve], output: str, title: Optional[str] = None) -> Path:
    """Draw losses (left), learning rate (middle) and the valid quality figures (right) and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(tag in curves for tag in LOSS_TAGS):
        raise ToolkitError("no loss scalars (train/loss, valid/loss) in the VisualDL logs")
    figure, (loss_axis, lr_axis, quality_axis) = plt.subplots(1, 3, figsize=(17, 4.5))
    for tag in LOSS_TAGS:
        if tag in curves:
            steps, values = zip(*curves[tag])
            style = "o-" if tag.startswith("valid") else "-"
            loss_axis.plot(steps, values, style, label=tag, markersize=3)
    loss_axis.set(xlabel="global step", ylabel="loss", title="loss")
    loss_axis.grid(alpha=0.3)
    loss_axis.legend()
    if LR_TAG in curves:
        steps, values = zip(*curves[LR_TAG])
        lr_axis.plot(steps, values, color="tab:red")
    lr_axis.set(xlabel="global step", ylabel="learning rate", title="learning rate")
    lr_axis.grid(alpha=0.3)
    _plot_quality(quality_axis, curves)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return Path(output)


def _plot_quality(axis, curves: Dict[str, Curve]) -> None:
    for tag in QUALITY_TAGS:
        if tag in curves:
            steps, values = zip(*curves[tag])
            axis.plot(steps, values, "o-", label=tag, markersize=3)
    if BASELINE_TAG in curves:
        # The baseline is a constant of the split (recorded again at each resume): a horizontal line.
        axis.axhline(curves[BASELINE_TAG][-1][1], color="gray", linestyle="--", label="unigram baseline (masked acc)")
    axis.set(xlabel="global step", ylabel="valid", title="quality (valid)")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Read the logs, draw, print where the PNG went."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log_dir", required=True, help="output_dir of a run, its runs/ folder, or a record file")
    parser.add_argument("--output", default="curves.png", help="PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    curves = read_curves(args.log_dir)
    path = plot_curves(curves, args.output, args.title)
    steps = max(step for curve in curves.values() for step, _ in curve)
    print(f"wrote {path} ({len(curves)} curves, up to step {steps})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
