"""ERNIE 1.0 pretraining, static graph (PIR). Single process: `python run_pretrain_static.py ...`; data parallel:
`python -m paddle.distributed.launch --nproc_per_node N run_pretrain_static.py ...` (GPUs: `--gpus 0,1,...`).

Same flags, data and checkpoint directories as run_pretrain.py; checkpoints hold `paddle.static.save` files plus the
static-name map (convert them with converter/params_static_to_dygraph.py)."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from args import parse_pretraining_args
from ernie1.common.errors import run_cli
from ernie1.pretrain.runtime import init_runtime
from ernie1.pretrain.static_train import run_static


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, set up device/ranks/seeds, then build, resume and train the static program."""
    config = parse_pretraining_args(argv)
    runtime = init_runtime(config.runtime)
    run_static(config, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
