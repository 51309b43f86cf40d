"""Device, distributed environment, CPU threads and seeds: everything that happens once at start, in main()."""

from __future__ import annotations

import logging
import os
import random
import sys
from dataclasses import dataclass
from typing import List

import numpy as np
import paddle

logger = logging.getLogger("ernie1")


@dataclass(frozen=True)
class Placement:
    """Where this process sits in the job (the RuntimeConfig asked for it; this is what it got)."""

    device: str
    world_size: int
    rank: int
    local_rank: int
    # Data parallel only: every rank reads its own slice of each global micro-batch.
    data_rank: int
    data_world_size: int

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes VisualDL and saves checkpoints."""
        return self.rank == 0


def launched_world_size() -> int:
    """Processes in the job (PADDLE_TRAINERS_NUM under paddle.distributed.launch, else 1)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def setup_logging(is_main: bool) -> None:
    """Console logging: INFO on rank 0, warnings only elsewhere."""
    level = logging.INFO if is_main else logging.WARNING
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def set_cpu_threads(world_size: int) -> int:
    """2 intra-op threads for a single CPU process, 1 per process under CPU data parallel; OMP_NUM_THREADS wins."""
    # `import paddle` sets OMP_NUM_THREADS=1 when unset, so its value alone cannot tell a user's choice from paddle's.
    explicit = os.environ.get("ERNIE_CPU_THREADS")
    threads = int(explicit) if explicit else (2 if world_size == 1 else 1)
    paddle.base.core.set_num_threads(threads)
    return threads


def set_seeds(seed: int) -> None:
    """Seed python, numpy and paddle (paddle.seed covers CPU and GPU generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    paddle.seed(seed)


def init_runtime(runtime_config) -> Placement:
    """Select the device, join the data-parallel group when launched with several processes, set threads and seeds."""
    device = runtime_config.device
    if device == "gpu" and not paddle.device.is_compiled_with_cuda():
        logger.warning("--device gpu requested but this Paddle build has no CUDA: running on cpu")
        device = "cpu"
    paddle.set_device(device)
    world_size = launched_world_size()
    rank = local_rank = 0
    if world_size > 1:
        from paddle.distributed import fleet

        strategy = fleet.DistributedStrategy()
        strategy.hybrid_configs = {"dp_degree": world_size, "mp_degree": 1, "pp_degree": 1, "sharding_degree": 1}
        fleet.init(is_collective=True, strategy=strategy)
        rank = paddle.distributed.get_rank()
        local_rank = int(os.environ.get("PADDLE_LOCAL_RANK", os.environ.get("PADDLE_RANK_IN_NODE", rank)))
    if device == "cpu":
        set_cpu_threads(world_size)
    setup_logging(rank == 0)
    # Model init uses the same seed on every rank (identical replicas); dropout later gets seed + rank.
    set_seeds(runtime_config.seed)
    return Placement(device, world_size, rank, local_rank, data_rank=rank, data_world_size=world_size)


def seed_for_training(runtime_config, placement: Placement) -> None:
    """Per-rank seeds for dropout after the model is built, as the original (seed + rank)."""
    set_seeds(runtime_config.seed + placement.rank)


def mean_across_ranks(values: List[float], world_size: int) -> List[float]:
    """The mean of each value over the ranks of the job (dygraph collectives; identity for one process)."""
    if world_size <= 1:
        return list(values)
    tensor = paddle.to_tensor(values, dtype="float64")
    paddle.distributed.all_reduce(tensor)
    return [float(value) / world_size for value in tensor.numpy()]


def barrier(world_size: int) -> None:
    """Wait for every rank; works in static mode too (the collective group was joined in dygraph mode)."""
    if world_size <= 1:
        return
    if paddle.in_dynamic_mode():
        paddle.distributed.barrier()
        return
    # In static mode paddle.distributed.barrier only appends an op to the current program.
    paddle.disable_static()
    try:
        paddle.distributed.barrier()
    finally:
        paddle.enable_static()


def all_ranks_max(value: int, world_size: int) -> int:
    """The largest `value` any rank holds (dygraph collectives; the value itself for one process)."""
    if world_size <= 1:
        return value
    tensor = paddle.to_tensor([value], dtype="int64")
    paddle.distributed.all_reduce(tensor, op=paddle.distributed.ReduceOp.MAX)
    return int(tensor.numpy()[0])
