"""ERNIE 1.0 pretraining, dygraph. Single process: `python run_pretrain.py ...`; data parallel:
`python -m paddle.distributed.launch --nproc_per_node N run_pretrain.py ...` (GPUs: `--gpus 0,1,...`)."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from args import run_entry
from ernie1.common.errors import run_cli
from ernie1.pretrain.engines.dygraph import DygraphEngine


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, place this process, then build, resume and train with the dygraph engine."""
    return run_entry(DygraphEngine, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
