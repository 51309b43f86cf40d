"""paddlenlp Trainer subclassed at its hooks: the ordered samplers, an evaluation that continues one cached valid
stream, and compute_loss / prediction_step raising the data path's failures in the main thread."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Iterator, List, Optional

import paddle
from paddlenlp.trainer import Trainer
from paddlenlp.trainer.trainer_utils import speed_metrics

from ernie1.pretrain.config import LOSS_NAMES
from ernie1.pretrain.data import OrderedBatchSampler, raise_data_failure
from ernie1.pretrain.model import forward_with_states
from ernie1.pretrain.quality import QUALITY_SUM_NAMES, quality_sums, summarize
from ernie1.pretrain.runtime import mean_across_ranks
from ernie1.pretrain.trainer.sampler import ResumableBatchSampler


class PretrainingTrainer(Trainer):
    """The Trainer with the pretraining samplers; `schedule` (a ScheduleConfig) places the valid stream."""

    def __init__(self, *args: Any, schedule: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.schedule = schedule
        self._valid_iterator: Optional[Iterator] = None

    def _ranks(self) -> tuple:
        return self.args.dataset_rank, max(1, self.args.dataset_world_size)

    def _get_train_sampler(self) -> Optional[paddle.io.BatchSampler]:
        if self.train_dataset is None:
            return None
        return ResumableBatchSampler(len(self.train_dataset), self.args.per_device_train_batch_size, *self._ranks())

    def _get_eval_sampler(self, eval_dataset: Any) -> Optional[paddle.io.BatchSampler]:
        if eval_dataset is None:
            return None
        # In order and finite, for the Trainer's own predict(); evaluate() reads through _eval_stream.
        return OrderedBatchSampler(len(eval_dataset), self.args.per_device_eval_batch_size, *self._ranks())

    def compute_loss(self, model, inputs, return_outputs=False):
        """The Trainer's loss, after turning a failure from the data path into its one-line error."""
        return super().compute_loss(model, raise_data_failure(inputs), return_outputs=return_outputs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The evaluation step: the loss (lm/sop parts kept by the criterion) and the quality sums of one batch, after
        turning a failure from the data path into its one-line error."""
        inputs = raise_data_failure(inputs)
        if not prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        inputs = self._prepare_inputs(inputs)
        masked_lm_labels, next_sentence_labels = inputs["labels"]
        with paddle.no_grad(), self.autocast_smart_context_manager():
            scores, sop_scores, states = forward_with_states(model, inputs)
            loss = self.criterion((scores, sop_scores), inputs["labels"])
            self.criterion.add_quality(
                quality_sums(
                    scores, sop_scores, states, masked_lm_labels, next_sentence_labels, inputs["attention_mask"]
                )
            )
        return loss.detach(), None, None

    def _pretraining_metrics(self, prefix: str) -> Dict[str, float]:
        """`<prefix>_lm_loss`, `<prefix>_sop_loss`, `<prefix>_masked_accuracy`, ... of the evaluation just run."""
        world_size = self.args.world_size
        losses, sums = self.criterion.pop_means("eval"), self.criterion.pop_means("quality")
        if losses is None:
            return {}
        values = dict(zip(LOSS_NAMES, mean_across_ranks(losses, world_size)))
        if sums is not None:
            quality = summarize(dict(zip(QUALITY_SUM_NAMES, mean_across_ranks(sums, world_size))), values["lm_loss"])
            values.update({name: value for name, value in quality.items() if value is not None})
        # `<prefix>_loss` replaces the Trainer's own mean of the same batch losses (equal up to rounding).
        return {f"{prefix}_{name}": value for name, value in values.items()}

    def _eval_stream(self, eval_dataset: Any, consumed_samples: int) -> Iterator:
        """An endless in-order iterator from `consumed_samples`, wrapping around so a small split never runs dry."""
        sampler = OrderedBatchSampler(
            len(eval_dataset), self.args.per_device_eval_batch_size, *self._ranks(), consumed_samples, wrap=True
        )
        loader = paddle.io.DataLoader(
            eval_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        # evaluation_loop takes a DataLoader iterator only: its batches are checked in prediction_step.
        return iter(loader)

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Optional[List[str]] = None, metric_key_prefix: str = "eval"
    ) -> Dict[str, float]:
        """`eval_iters` batches from one cached valid iterator (re-creating it leaked memory in the original); any
        other dataset (the test split) is read from its start for `test_iters` batches."""
        if eval_dataset is None or eval_dataset is self.eval_dataset:
            if self._valid_iterator is None:
                # The evaluation at this step has not run yet: those before it consumed the stream.
                offset = self.schedule.valid_offset(max(0, self.state.global_step - 1))
                self._valid_iterator = self._eval_stream(self.eval_dataset, offset)
            iterator, iters = self._valid_iterator, self.args.eval_iters
        else:
            iterator, iters = self._eval_stream(eval_dataset, 0), self.args.test_iters
        start_time = time.time()
        output = self.evaluation_loop(
            iterator,
            description="Evaluation",
            prediction_loss_only=True,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
            max_eval_iters=iters,
        )
        total_batch_size = self.args.per_device_eval_batch_size * max(1, self.args.dataset_world_size)
        output.metrics.update(
            speed_metrics(
                metric_key_prefix,
                start_time,
                num_samples=output.num_samples,
                num_steps=math.ceil(output.num_samples / total_batch_size),
            )
        )
        output.metrics.update(self._pretraining_metrics(metric_key_prefix))
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, output.metrics)
        return output.metrics
