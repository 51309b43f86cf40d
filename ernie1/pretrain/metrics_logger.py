"""Rank-0 console lines (the original's format, REFERENCE §11.8), VisualDL scalars and a JSON-lines metrics file."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ernie1.common.formats import METRICS_FILE, VISUALDL_DIR
from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.quality import QUALITY_NAMES, UnigramBaseline, describe_baseline

logger = logging.getLogger("ernie1")


# The console's names and formats of the quality figures (metrics.jsonl and VisualDL use QUALITY_NAMES).
_SHORT_NAMES = {
    "masked_accuracy": "masked_acc",
    "lm_perplexity": "lm_ppl",
    "sop_accuracy": "sop_acc",
    "token_cosine": "token_cos",
}
_FORMATS = {"masked_accuracy": ".4f", "lm_perplexity": ".2f", "sop_accuracy": ".4f", "token_cosine": ".4f"}


def visualdl_run_dir(output_dir: str) -> Path:
    """`output_dir/runs/<Mon DD_HH-MM-SS>_<hostname>`, as the original."""
    return Path(output_dir) / VISUALDL_DIR / f"{time.strftime('%b%d_%H-%M-%S')}_{socket.gethostname()}"


class MetricsLogger:
    """Writes the same numbers to the console, VisualDL (`train/...`, `valid/...`) and `output_dir/metrics.jsonl`."""

    def __init__(self, output_dir: str, enabled: bool, use_visualdl: bool = True):
        self.enabled = enabled
        self.writer = None
        self.metrics_path = Path(output_dir) / METRICS_FILE
        if not enabled:
            return
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if use_visualdl:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=str(visualdl_run_dir(output_dir)))

    def add_text(self, tag: str, text: str) -> None:
        """A VisualDL text record (resolved config, model config)."""
        if self.writer is not None:
            self.writer.add_text(tag, text, step=0)

    def _record(self, record: Dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _scalars(self, prefix: str, step: int, values: Mapping[str, float]) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def log_train(
        self,
        step: int,
        losses: Mapping[str, float],
        learning_rate: float,
        steps_per_second: float,
        samples_per_second: float,
        tokens_per_second: float,
        amp: Optional[Mapping[str, float]] = None,
    ) -> None:
        """One training line every logging_freq steps."""
        if not self.enabled:
            return
        line = (
            f"global step {step}, loss: {losses['loss']:.9f}, lm_loss: {losses['lm_loss']:.6f}, "
            f"sop_loss: {losses['sop_loss']:.6f}, speed: {steps_per_second:.2f} steps/s, "
            f"ips: {samples_per_second:.2f} seqs/s, tokens/s: {tokens_per_second:.0f}, learning rate: {learning_rate:.5e}"
        )
        if amp:
            line += ", " + ", ".join(f"{key}: {value:g}" for key, value in amp.items())
        logger.info(line)
        scalars = dict(losses)
        scalars.update(
            global_step=step,
            learning_rate=learning_rate,
            steps_per_second=steps_per_second,
            samples_per_second=samples_per_second,
            tokens_per_second=tokens_per_second,
        )
        self._scalars("train", step, scalars)
        if amp:
            self._scalars("amp", step, amp)
        self._record({"split": "train", "step": step, "learning_rate": learning_rate, **dict(losses)})

    def log_start(self, step: int, run_info: Mapping[str, str], baseline: Optional[UnigramBaseline]) -> None:
        """Once per run: how steps run, and the unigram baseline the valid figures are to be compared with."""
        if not self.enabled:
            return
        logger.info(", ".join(f"{key}: {value}" for key, value in run_info.items()))
        record: Dict[str, Any] = {"split": "start", "step": step, **dict(run_info)}
        if baseline is not None:
            logger.info(describe_baseline(baseline))
            record.update(baseline.as_record())
            self._scalars(
                "baseline",
                step,
                {"unigram_lm_loss": baseline.lm_loss, "unigram_masked_accuracy": baseline.masked_accuracy},
            )
        self._record(record)

    def log_eval(self, split: str, step: int, values: Mapping[str, Any]) -> None:
        """`valid step N, ...` after each evaluation, `test step N, ...` at the end: losses, the quality figures
        (ernie1.pretrain.quality.QUALITY_NAMES, where measured) and seqs/s."""
        if not self.enabled:
            return
        figures = {name: float(values[name]) for name in (*LOSS_NAMES, *QUALITY_NAMES) if values.get(name) is not None}
        quality = "".join(
            f", {_SHORT_NAMES[name]}: {figures[name]:{_FORMATS[name]}}" for name in QUALITY_NAMES if name in figures
        )
        samples_per_second = float(values.get("samples_per_second", 0.0))
        logger.info(
            f"{split} step {step}, loss: {figures['loss']:.9f}, lm_loss: {figures['lm_loss']:.6f}, "
            f"sop_loss: {figures['sop_loss']:.6f}{quality}, ips: {samples_per_second:.2f} seqs/s"
        )
        self._scalars(split, step, {**figures, "samples_per_second": samples_per_second})
        self._record({"split": split, "step": step, **figures})

    def close(self) -> None:
        """Flush VisualDL."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_metrics(output_dir: str, split: str = "train") -> list:
    """Records of one split from `output_dir/metrics.jsonl` (tests and tools)."""
    path = Path(output_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [record for record in records if record["split"] == split]


def last_valid_against_baseline(output_dir: str) -> Optional[Dict[str, float]]:
    """The run's last valid evaluation next to its unigram baseline (step, masked accuracy, lm_loss, token cosine and
    the baseline's two figures); None without a metrics.jsonl holding both."""
    starts, valid = read_metrics(output_dir, "start"), read_metrics(output_dir, "valid")
    if not starts or not valid or "unigram_masked_accuracy" not in starts[-1]:
        return None
    last = valid[-1]
    return {
        "step": last["step"],
        "masked_accuracy": last["masked_accuracy"],
        "unigram_masked_accuracy": starts[-1]["unigram_masked_accuracy"],
        "lm_loss": last["lm_loss"],
        "unigram_lm_loss": starts[-1]["unigram_lm_loss"],
        "token_cosine": last["token_cosine"],
    }


def describe_against_baseline(figures: Mapping[str, float]) -> str:
    """One line: the valid figures of `last_valid_against_baseline` next to the baseline's."""
    return (
        f"step {figures['step']}: valid masked acc {figures['masked_accuracy']:.4f} vs unigram baseline "
        f"{figures['unigram_masked_accuracy']:.4f}, lm_loss {figures['lm_loss']:.3f} vs "
        f"{figures['unigram_lm_loss']:.3f}, token cosine {figures['token_cosine']:.3f}"
    )
