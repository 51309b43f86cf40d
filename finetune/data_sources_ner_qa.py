"""`python -m finetune.data_sources_ner_qa --task msra_ner|cmrc2018 --out_dir DIR`: `finetune.data_sources` for NER/QA."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from ernie1.common.errors import run_cli
from finetune.data_sources import main as data_sources_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The original two-task command line: --task is required."""
    return data_sources_main(argv, tasks=("msra_ner", "cmrc2018"), default=None)


if __name__ == "__main__":
    sys.exit(run_cli(main))
