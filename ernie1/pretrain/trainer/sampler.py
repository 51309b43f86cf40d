"""The shared ordered sampler, typed as paddlenlp's DistributedBatchSampler so the Trainer positions it on resume."""

from __future__ import annotations

from paddlenlp.utils.batch_sampler import DistributedBatchSampler as NlpDistributedBatchSampler

from ernie1.pretrain.data import OrderedBatchSampler


class ResumableBatchSampler(OrderedBatchSampler, NlpDistributedBatchSampler):
    """On resume the Trainer calls `set_epoch(consumed_samples=step x global batch)` on a sampler of this type instead
    of reading and dropping the consumed batches; built at 0, the sampler therefore skips them exactly once
    (PaddleNLP #8980 skipped them twice).
    """

    def __init__(self, num_samples: int, micro_batch_size: int, data_rank: int = 0, data_world_size: int = 1):
        OrderedBatchSampler.__init__(self, num_samples, micro_batch_size, data_rank, data_world_size, 0)
        self.epoch = 0

    def __len__(self) -> int:
        # Batches of the whole epoch, as paddlenlp's sampler: the Trainer derives its step bookkeeping from this.
        return self.num_samples // self.global_micro_batch
