"""ERNIE 1.0 pretraining, static graph (PIR). Single process: `python run_pretrain_static.py ...`; data parallel:
`python -m paddle.distributed.launch --nproc_per_node N run_pretrain_static.py ...` (GPUs: `--gpus 0,1,...`).

Same flags, data and checkpoint directories as run_pretrain.py; checkpoints hold `paddle.static.save` files plus the
static-name map (convert them with converter/params_static_to_dygraph.py)."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from args import run_entry
from ernie1.common.errors import run_cli
from ernie1.pretrain.engines.static import StaticEngine


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, place this process, then build, resume and train with the static-graph engine."""
    return run_entry(StaticEngine, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
