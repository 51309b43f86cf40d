"""The paddlenlp Trainer of a fine-tuning run: checkpoints to resume, evaluation cadence, train / evaluate / predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from paddlenlp.trainer import Trainer, TrainingArguments

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import WEIGHTS_FILE
from ernie1.tasks.spec import EvalSet, as_outputs


class FinetuneTrainer(Trainer):
    """paddlenlp's Trainer, with `--save_total_limit` honoured in single-process runs too.

    paddlenlp 2.8.1 rotates checkpoints only when `local_rank == 0`, which a run without the launcher never is, so
    every checkpoint was kept.
    """

    def __init__(self, *args: Any, label_keys: Optional[Sequence[str]] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if label_keys:
            self.label_names = list(label_keys)

    def _save_checkpoint(self, model: Any, metrics: Optional[Dict[str, float]] = None) -> None:
        super()._save_checkpoint(model, metrics=metrics)
        if self.args.local_rank == -1 and self.args.save_total_limit:
            self._rotate_checkpoints(use_mtime=True, output_dir=self.args.output_dir)


def apply_minimum_eval_times(training_args: TrainingArguments, num_training_steps: int) -> None:
    """Lower eval_steps (and save_steps with it) so that at least `minimum_eval_times` evaluations happen."""
    wanted = training_args.minimum_eval_times
    typed = set(getattr(training_args, "typed_flags", ()))
    if wanted is None or wanted <= 0 or "eval_steps" in typed or num_training_steps <= 0:
        return
    steps = max(1, num_training_steps // wanted)
    if training_args.eval_steps is None or steps < training_args.eval_steps:
        training_args.eval_steps = steps
        if "save_steps" not in typed and training_args.load_best_model_at_end:
            training_args.save_steps = steps


def resolve_last_checkpoint(training_args: TrainingArguments) -> Optional[str]:
    """The checkpoint-N to resume from; an output_dir holding a model but no checkpoint is an error (unless overwriting)."""
    from paddlenlp.trainer import get_last_checkpoint

    output_dir = Path(training_args.output_dir)
    if not training_args.do_train or training_args.overwrite_output_dir or not output_dir.is_dir():
        return None
    last = get_last_checkpoint(str(output_dir))
    if last is None and any(p.name.startswith("checkpoint-") or p.name == WEIGHTS_FILE for p in output_dir.iterdir()):
        raise ToolkitError(
            f"--output_dir {output_dir} already holds a model but no complete checkpoint-N to resume; "
            "pass --overwrite_output_dir or another --output_dir"
        )
    return last


def metrics_of(eval_set: EvalSet) -> Callable[[Any], Dict[str, float]]:
    """A Trainer `compute_metrics` that decodes the eval set's outputs and scores whole examples (not tokens)."""

    def compute_metrics(eval_prediction: Any) -> Dict[str, float]:
        return eval_set.score(eval_set.decode(as_outputs(eval_prediction.predictions)))

    return compute_metrics


def build_trainer(
    model: Any,
    training_args: TrainingArguments,
    train_dataset: Optional[List[Dict[str, Any]]],
    eval_set: Optional[EvalSet],
    tokenizer: Any,
    data_collator: Callable,
    criterion: Any = None,
    label_keys: Optional[Sequence[str]] = None,
) -> FinetuneTrainer:
    """A Trainer over in-memory feature lists (eval_steps shortened by `minimum_eval_times` if set)."""
    if train_dataset is not None and training_args.do_train:
        batches_per_epoch = max(1, len(train_dataset) // max(1, training_args.train_batch_size))
        steps_per_epoch = max(1, batches_per_epoch // max(1, training_args.gradient_accumulation_steps))
        total = (
            training_args.max_steps
            if training_args.max_steps > 0
            else int(steps_per_epoch * training_args.num_train_epochs)
        )
        apply_minimum_eval_times(training_args, total)
    return FinetuneTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_set.inputs(with_labels=True) if eval_set is not None else None,
        tokenizer=tokenizer,
        data_collator=data_collator,
        criterion=criterion,
        compute_metrics=metrics_of(eval_set) if eval_set is not None else None,
        label_keys=label_keys,
    )


def train_and_save(trainer: Trainer, resume_from: Optional[str]) -> Dict[str, float]:
    """Train (resuming from `resume_from` when given), save the final model and the train metrics."""
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    return dict(result.metrics)


def evaluate_and_save(trainer: Trainer) -> Dict[str, float]:
    """Evaluate on the Trainer's eval set and save `eval_results.json`."""
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return dict(metrics)


def predict_and_save(trainer: Trainer, test_set: EvalSet, path: Path) -> List[Any]:
    """Write the task's prediction file for `test_set`; with gold targets also `test_results.json`."""
    # Trainer.predict drops the outputs when the Trainer has no compute_metrics (no --do_eval): run the loop directly.
    dataloader = trainer.get_test_dataloader(test_set.inputs(with_labels=False))
    output = trainer.evaluation_loop(dataloader, description="Prediction", prediction_loss_only=False)
    predictions = test_set.decode(as_outputs(output.predictions))
    test_set.write(path, predictions)
    if test_set.has_gold:
        metrics = {f"test_{key}": value for key, value in test_set.score(predictions).items()}
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)
    return predictions
