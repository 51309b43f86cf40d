"""Fine-tune an ERNIE checkpoint for named-entity recognition (peoples_daily_ner, msra_ner, local CoNLL/BIO files).

    cd finetune && python run_ner.py --do_train --do_eval --do_predict --do_export \
        --model_name_or_path ../output/ernie-1.0-dp8-gb512/model_last --dataset msra_ner \
        --train_file data/msra_ner/train.txt --dev_file data/msra_ner/dev.txt --test_file data/msra_ner/test.txt \
        --output_dir ./tmp/msra_ner --eval_steps 200 --save_steps 200 --metric_for_best_model f1 \
        --load_best_model_at_end --save_total_limit 1
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as `python run_ner.py` from finetune/: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import run_cli  # noqa: E402
from finetune.skeleton import run_finetune  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the flags, then train / evaluate / predict / export a token classifier as requested."""
    return run_finetune("ner", argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
