"""A random-init twin of a pretraining checkpoint: same architecture and tokenizer, freshly initialised weights.

    python tools/random_init_checkpoint.py --like output/demo/pretrain/model_last --output_dir output/demo/random_init

Fine-tuning it with the recipe used for the pretrained checkpoint says what pretraining bought (scripts/demo.sh
step 7, benchmarks/bench_pretraining_payoff.py). The directory has the layout run_pretrain.py writes
(`model_state.pdparams`, `model_config.json`, the tokenizer files): every fine-tuning script takes it as
`--model_name_or_path`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402

# What a fine-tuning script reads from a checkpoint besides the weights.
COPIED_FILES = ("model_config.json", "config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def write_random_init_checkpoint(like: str, output_dir: str, seed: int = 0) -> Path:
    """`output_dir` with `like`'s config and tokenizer files and seeded ErnieForPretraining weights (paddlenlp's init:
    normal(0, initializer_range), zero biases); returns the directory."""
    import paddle

    from ernie1.common.formats import WEIGHTS_FILE
    from ernie1.pretrain.masked_lm import read_architecture
    from ernie1.pretrain.model import build_pretraining_model

    values = read_architecture(like, "--like")
    if not (Path(like) / "vocab.txt").is_file():
        raise ToolkitError(f"--like {like}: no vocab.txt next to the weights; pass a pretraining checkpoint directory")
    target = Path(output_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED_FILES:
        if (Path(like) / name).is_file():
            shutil.copyfile(Path(like) / name, target / name)
    from paddlenlp.transformers import ErnieConfig

    paddle.seed(seed)
    model = build_pretraining_model(ErnieConfig(**values), binary_head=True)
    paddle.save(model.state_dict(), str(target / WEIGHTS_FILE))
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write a random-init checkpoint shaped like a given one.")
    parser.add_argument("--like", required=True, help="A pretraining checkpoint directory (model_last, model_<N>).")
    parser.add_argument("--output_dir", required=True, help="Where the random-init checkpoint goes.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the initialisation.")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    print(write_random_init_checkpoint(args.like, args.output_dir, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
