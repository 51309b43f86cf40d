"""Print decoded pretraining samples with their masked spans, SOP label and masking level (a data sanity check).

    python -m data_tools.inspect_samples --input_dir data/ --vocab vocab.txt --split train --num_samples 3

Masked spans are shown as `⟦哈 尔 滨 ⇒ [MASK] [MASK] 滨⟧`: the original tokens, then what the model sees; at
phrase/entity level the knowledge spans masked whole carry their kind, `⟦entity: 湖 南 省 ⇒ ...⟧`. The samples
come from the same builder as training (`ernie1.data.builder.build_train_valid_test_datasets`), so the index-map
cache it needs is written next to the data, as a training run would. With `--masking_schedule`, `--max_steps` and
`--global_batch_size` place the samples on the schedule as in a run with those flags (sample i is read at step
i // global_batch_size + 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from ernie1.common.errors import ToolkitError, run_cli
from ernie1.data.dataset_config import ErnieDatasetConfig
from ernie1.data.masking import MaskingVocab
from ernie1.data.sample_view import describe_sample

SPLITS = ("train", "valid", "test")


def _bool_flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y"):
        return True
    if lowered in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The CLI flags (names follow the pretraining scripts where they exist)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input_dir", required=True, help="dir of *_idx.npz, a prefix, or 'w1 prefix1 w2 prefix2'")
    vocab = parser.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--vocab", help="vocab.txt the corpus was encoded with (the ## extension is added)")
    vocab.add_argument("--model_name", help="tokenizer directory or paddlenlp name (as in create_pretraining_data)")
    parser.add_argument("--tokenizer_name", default="ErnieTokenizer", help="with --model_name")
    parser.add_argument("--split", choices=SPLITS, default="train", help="which split to show")
    parser.add_argument("--split_ratio", default="949,50,1", help="the pretraining --split proportions")
    parser.add_argument("--num_samples", type=int, default=3, help="how many samples to print")
    parser.add_argument("--start", type=int, default=0, help="index of the first sample")
    parser.add_argument("--masking_level", default="word", help="char | word | phrase | entity, or a weighted mix")
    parser.add_argument(
        "--masking_schedule",
        default="",
        help="stages over the run's steps, e.g. char:0-0.3,phrase:0.3-0.6,entity:0.6-1",
    )
    parser.add_argument("--max_steps", type=int, default=0, help="the run's steps (with --masking_schedule)")
    parser.add_argument("--global_batch_size", type=int, default=1, help="samples per step (with --masking_schedule)")
    parser.add_argument(
        "--knowledge_mask_share", type=float, default=1.0, help="share of the budget whole knowledge spans take first"
    )
    parser.add_argument("--max_seq_len", type=int, default=128, help="sample length incl. [CLS]/[SEP]")
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--short_seq_prob", type=float, default=0.1)
    parser.add_argument("--max_ngrams", type=int, default=3)
    parser.add_argument("--binary_head", type=_bool_flag, default=True, help="true: A/B pairs with SOP; false: A only")
    parser.add_argument("--seed", type=int, default=1234)
    return parser


def load_vocab(args: argparse.Namespace) -> MaskingVocab:
    """MaskingVocab from --vocab (no paddlenlp needed) or --model_name (paddlenlp tokenizer + ## extension)."""
    if args.vocab:
        return MaskingVocab.from_vocab_file(args.vocab, flag="--vocab")
    from ernie1.text.tokenizer import extend_chinese_char, load_tokenizer

    tokenizer = load_tokenizer(args.model_name, args.tokenizer_name)
    extend_chinese_char(tokenizer)
    return MaskingVocab.from_tokenizer(tokenizer)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse flags, build the requested split like training does, print the samples."""
    args = build_parser().parse_args(argv)
    if args.num_samples < 1:
        raise ToolkitError(f"--num_samples must be >= 1, got {args.num_samples}")
    if args.start < 0:
        raise ToolkitError(f"--start must be >= 0, got {args.start}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    config = ErnieDatasetConfig(
        input_dir=args.input_dir,
        split=args.split_ratio,
        max_seq_length=args.max_seq_len,
        masked_lm_prob=args.masked_lm_prob,
        short_seq_prob=args.short_seq_prob,
        max_ngrams=args.max_ngrams,
        binary_head=args.binary_head,
        masking_level=args.masking_level,
        masking_schedule=args.masking_schedule,
        knowledge_mask_share=args.knowledge_mask_share,
        global_batch_size=args.global_batch_size,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    vocab = load_vocab(args)
    from ernie1.data.builder import build_train_valid_test_datasets

    wanted = args.start + args.num_samples
    counts = tuple(wanted if name == args.split else 0 for name in SPLITS)
    dataset = build_train_valid_test_datasets(config, vocab, counts)[SPLITS.index(args.split)]
    if dataset is None:
        raise ToolkitError(
            f"--split {args.split}: this split has no usable document with --split_ratio {args.split_ratio}; "
            "pick another split or give it a larger share"
        )
    end = min(wanted, len(dataset))
    scheduled = bool(args.masking_schedule) and args.split == "train"
    for index in range(args.start, end):
        sample, details = dataset.build(index)
        step = index // args.global_batch_size + 1 if scheduled else None
        print(describe_sample(index, args.split, sample, vocab, details, step))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
