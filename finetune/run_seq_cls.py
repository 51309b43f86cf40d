"""Fine-tune an ERNIE checkpoint for sequence classification (chnsenticorp_v2, CLUE tasks, xnli_cn, local files).

    cd finetune && python run_seq_cls.py --do_train --do_eval --do_predict --do_export \
        --model_name_or_path ../output/ernie-1.0-dp8-gb512/model_last --dataset chnsenticorp_v2 \
        --train_file data/train.tsv --dev_file data/dev.tsv --test_file data/test.tsv --output_dir ./tmp/chnsenticorp_v2
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as `python run_seq_cls.py` from finetune/: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import run_cli  # noqa: E402
from finetune.skeleton import run_finetune  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, then train / evaluate / predict / export a classifier as requested."""
    return run_finetune("seq_cls", argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
