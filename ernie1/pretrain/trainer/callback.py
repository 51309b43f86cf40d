"""A TrainerCallback for the per-step lm/sop losses and tokens/s (console + `metrics.jsonl`, as the dygraph script)
and clean tokenizer files in every checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paddlenlp.trainer import TrainerCallback
from paddlenlp.trainer.trainer_utils import PREFIX_CHECKPOINT_DIR

from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.metrics_logger import MetricsLogger
from ernie1.pretrain.runtime import mean_across_ranks
from ernie1.pretrain.trainer.criterion import CriterionWrapper
from ernie1.text.tokenizer import save_tokenizer_files


class PretrainingCallback(TrainerCallback):
    """Logs the criterion's lm/sop means after the Trainer's own lines; saves the tokenizer without the extension."""

    def __init__(self, criterion: CriterionWrapper, tokenizer: Any, max_seq_length: int, metrics: MetricsLogger):
        self.criterion = criterion
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.metrics = metrics

    def _means(self, mode: str, world_size: int):
        means = self.criterion.pop_means(mode)
        return None if means is None else mean_across_ranks(means, world_size)

    def on_log(self, args, state, control, logs=None, **kwargs):
        """After each training log line: the same step's lm/sop means (averaged over ranks)."""
        if not logs or "loss" not in logs:
            return
        means = self._means("train", args.world_size)
        if means is None:
            return
        samples_per_second = float(logs.get("interval_samples_per_second", 0.0))
        self.metrics.log_train(
            state.global_step,
            dict(zip(LOSS_NAMES, means)),
            float(logs.get("learning_rate", 0.0)),
            float(logs.get("interval_steps_per_second", 0.0)),
            samples_per_second,
            samples_per_second * self.max_seq_length,
        )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        """After each evaluation (valid) or the final test: its losses and quality figures (PretrainingTrainer put
        them into the Trainer's metrics, `eval_masked_accuracy`, ...)."""
        if not metrics:
            return
        split = "test" if any(key.startswith("test_") for key in metrics) else "valid"
        prefix = "test" if split == "test" else "eval"
        if f"{prefix}_lm_loss" not in metrics:
            return
        values = {key[len(prefix) + 1 :]: value for key, value in metrics.items() if key.startswith(prefix + "_")}
        self.metrics.log_eval(split, state.global_step, values)

    def on_save(self, args, state, control, **kwargs):
        """The Trainer got no tokenizer (its save would leak the `##` extension): write a clean one (PaddleNLP #3671)."""
        if args.should_save:
            directory = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if directory.is_dir():
                save_tokenizer_files(self.tokenizer, directory)

    def on_train_end(self, args, state, control, **kwargs):
        """Flush the metrics writers."""
        self.metrics.close()
