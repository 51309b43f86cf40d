"""Rank-0 console lines (the original's format, REFERENCE §11.8), VisualDL scalars and a JSON-lines metrics file."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ernie1.common.formats import METRICS_FILE, VISUALDL_DIR

logger = logging.getLogger("ernie1")


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

    def log_eval(self, split: str, step: int, losses: Mapping[str, float], samples_per_second: float) -> None:
        """`valid step N, ...` after each evaluation, `test step N, ...` at the end."""
        if not self.enabled:
            return
        logger.info(
            f"{split} step {step}, loss: {losses['loss']:.9f}, lm_loss: {losses['lm_loss']:.6f}, "
            f"sop_loss: {losses['sop_loss']:.6f}, ips: {samples_per_second:.2f} seqs/s"
        )
        self._scalars(split, step, {**dict(losses), "samples_per_second": samples_per_second})
        self._record({"split": split, "step": step, **dict(losses)})

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
