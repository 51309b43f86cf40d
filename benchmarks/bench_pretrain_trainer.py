"""Trainer pretraining throughput on CPU: training tokens/s of the fixed tiny config of bench_pretrain.py.

    .venv/bin/python benchmarks/bench_pretrain_trainer.py                         # Trainer and dygraph, 2 threads
    .venv/bin/python benchmarks/bench_pretrain_trainer.py --entry trainer --threads 1 2 --steps 40

`bench_trainer` runs the real `PretrainingTrainer.train()` loop (sampler, collate call, forward, CriterionWrapper,
backward, AdamW with the no-decay filter and global-norm clipping, LR schedule, Trainer bookkeeping and logging) over
synthetic batches in ernie1.data.collate's format, so no data pipeline is timed. Tokens are counted as the training
logs count them: micro_batch_size x seq_len per step. The dygraph figure (bench_pretrain.bench_dygraph) is the same
config without the Trainer, measured in the same process for comparison.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pretrain import TINY, VOCAB_SIZE, synthetic_batch  # noqa: E402


class _BatchPerCall:
    """Trainer collate that hands out pre-built batches in turn (the sampled indices only set the batch size)."""

    def __init__(self, batches: List[dict]):
        self.batches = batches
        self.calls = 0

    def __call__(self, samples: Sequence[int]) -> dict:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return batch


def bench_trainer(
    threads: int = 2, micro_batch_size: int = 8, seq_len: int = 128, steps: int = 30, warmup_steps: int = 5
) -> Dict[str, float]:
    """Time `steps` Trainer steps (after `warmup_steps`) of the tiny config; tokens/s and ms/step."""
    import paddle
    from paddlenlp.trainer import TrainerCallback
    from paddlenlp.transformers import ErnieConfig
    from paddlenlp.utils.log import logger as paddlenlp_logger

    from ernie1.data.collate import to_trainer_inputs
    from ernie1.pretrain.config import OptimConfig, ScheduleConfig
    from ernie1.pretrain.lr_schedule import build_lr_scheduler
    from ernie1.pretrain.model import PretrainingCriterion, build_pretraining_model
    from ernie1.pretrain.trainer.arguments import PreTrainingArguments
    from ernie1.pretrain.trainer.criterion import CriterionWrapper
    from ernie1.pretrain.trainer.pretraining_trainer import PretrainingTrainer

    class StepClock(TrainerCallback):
        """perf_counter at the end of the last warm-up step and of the last step."""

        def __init__(self):
            self.marks: Dict[int, float] = {}

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup_steps, warmup_steps + steps):
                self.marks[state.global_step] = time.perf_counter()

    # The Trainer logs every argument and each log step; keep the figures readable.
    paddlenlp_logger.set_level("WARNING")
    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(threads)
    paddle.seed(1)
    rng = np.random.RandomState(0)
    batches = [to_trainer_inputs(synthetic_batch(rng, micro_batch_size, seq_len)) for _ in range(4)]
    total_steps = warmup_steps + steps
    with tempfile.TemporaryDirectory() as output_dir, paddle.utils.unique_name.guard():
        args = PreTrainingArguments(
            output_dir=output_dir,
            do_train=True,
            max_steps=total_steps,
            per_device_train_batch_size=micro_batch_size,
            learning_rate=1e-4,
            min_learning_rate=1e-5,
            weight_decay=0.01,
            max_grad_norm=1.0,
            logging_steps=10,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            device="cpu",
            dataloader_num_workers=0,
            seed=1,
        )
        optim = OptimConfig(
            max_lr=1e-4, min_lr=1e-5, warmup_steps=0, decay_steps=1000, weight_decay=0.01, grad_clip=1.0
        )
        model = build_pretraining_model(
            ErnieConfig(vocab_size=VOCAB_SIZE, hidden_act="relu", **TINY), binary_head=True
        )
        clock = StepClock()
        trainer = PretrainingTrainer(
            model=model,
            criterion=CriterionWrapper(PretrainingCriterion(True)),
            args=args,
            data_collator=_BatchPerCall(batches),
            train_dataset=list(range(micro_batch_size * total_steps)),
            optimizers=(None, build_lr_scheduler(optim)),
            callbacks=[clock],
            schedule=ScheduleConfig(micro_batch_size=micro_batch_size),
        )
        trainer.train()
    elapsed = clock.marks[total_steps] - clock.marks[warmup_steps]
    return {"tokens_per_second": steps * micro_batch_size * seq_len / elapsed, "ms_per_step": 1000 * elapsed / steps}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """bench_pretrain.py's report for the Trainer and dygraph entry points (same flags)."""
    import bench_pretrain

    argv = list(sys.argv[1:] if argv is None else argv)
    return bench_pretrain.main(argv if "--entry" in argv else ["--entry", "trainer", "dygraph", *argv])


if __name__ == "__main__":
    sys.exit(main())
