"""ERNIE 1.0 pretraining, dygraph. Single process: `python run_pretrain.py ...`; data parallel:
`python -m paddle.distributed.launch --nproc_per_node N run_pretrain.py ...` (GPUs: `--gpus 0,1,...`)."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from args import parse_pretraining_args
from ernie1.common.errors import run_cli
from ernie1.pretrain.runtime import init_runtime
from ernie1.pretrain.train_dygraph import run_dygraph


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, set up device/ranks/seeds, then build, resume and train."""
    config = parse_pretraining_args(argv)
    runtime = init_runtime(config.runtime)
    run_dygraph(config, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
