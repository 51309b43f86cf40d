"""Try a checkpoint on your own sentence: each [MASK] is predicted (one forward, argmax), with the top-k candidates.

    python tools/fill_mask.py --model_dir output/demo/pretrain/model_last "哈尔滨是[MASK][MASK]江的省会" --top_k 5

For each text: the text with every [MASK] replaced by its top prediction, then one line per mask,
`  [MASK] <i>: <token> <probability>, ...` (most likely first). `--model_dir` takes every checkpoint the probe does
(tools/probe_knowledge.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402
from tools.probe_knowledge import ToolkitArgumentParser, import_library, positive_int  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = ToolkitArgumentParser(description="Fill the [MASK]s of a sentence with a pretraining checkpoint.")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="Sentences with [MASK] where a character goes.")
    parser.add_argument("--model_dir", required=True, help="A checkpoint directory (model_last, checkpoint-N, ...).")
    parser.add_argument("--top_k", type=positive_int, default=5, help="Candidates shown per mask.")
    return parser


def render(filled) -> str:
    """The filled text and one line of candidates per mask."""
    lines = [filled.filled]
    for number, candidates in enumerate(filled.candidates, start=1):
        shown = ", ".join(f"{token} {probability:.4f}" for token, probability in candidates)
        lines.append(f"  [MASK] {number}: {shown}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Load the checkpoint, predict every text's masks, print them."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    for number, text in enumerate(args.texts, start=1):
        if not text.strip():
            raise ToolkitError(f"text {number} is empty")
    import_library()
    from ernie1.pretrain.masked_lm import fill_masks, load_masked_lm

    masked_lm = load_masked_lm(args.model_dir)
    for filled in fill_masks(masked_lm, args.texts, args.top_k):
        print(render(filled))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
