"""Stage 2: JSON lines -> token ids `<prefix>_ids.npy` + index `<prefix>_idx.npz` (+ `<prefix>_knowledge.npz`).

    python -u data_tools/create_pretraining_data.py --model_name <dir or vocab.txt> --tokenizer_name ErnieTokenizer \\
        --input_path corpus.jsonl --split_sentences --chinese --cn_whole_word_segment --cn_seg_func jieba \\
        --output_prefix corpus --workers 8 --log_interval 10000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

if __name__ == "__main__" and not __package__:
    # Run as a file: sys.path[0] is data_tools/, whose module names could shadow top-level ones; use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402
from ernie1.data.preprocess import write_pretraining_data  # noqa: E402
from ernie1.text.document_encoder import EncodeConfig  # noqa: E402
from ernie1.text.jsonl_corpus import DEFAULT_MAX_LINE_BYTES, list_jsonl_inputs  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_argument_group("input and output")
    group.add_argument(
        "--model_name", required=True, help="directory with vocab.txt, a vocab file, or a built-in name"
    )
    group.add_argument("--tokenizer_name", required=True, help="ErnieTokenizer or BertTokenizer")
    group.add_argument("--input_path", required=True, help="a .jsonl file, or a directory of *.jsonl files")
    group.add_argument("--output_prefix", required=True, help="writes <prefix>_ids.npy and <prefix>_idx.npz")
    group.add_argument("--data_format", default="text", help="kept for compatibility; only JSON lines are read")
    group.add_argument("--json_key", default="text", help="key of the document text in each JSON line")
    group = parser.add_argument_group("text processing")
    group.add_argument("--split_sentences", action="store_true", help="one sentence per line (needs --chinese)")
    group.add_argument("--chinese", action="store_true", help="split sentences on newlines (no NLTK)")
    group.add_argument("--cn_whole_word_segment", action="store_true", help="mark whole words with ## (WWM)")
    group.add_argument("--cn_seg_func", default="jieba", help="word segmenter for WWM: jieba or rjieba")
    group.add_argument("--cn_splited", action="store_true", help="text is already segmented by --cn_split_dimer")
    group.add_argument("--cn_split_dimer", default=" ", help="word separator of pre-segmented text")
    group.add_argument("--append_eos", action="store_true", help="append eos ([SEP] for WordPiece) to each document")
    group.add_argument("--knowledge_spans", action="store_true", help="also write <prefix>_knowledge.npz")
    group.add_argument("--entity_dict", default=None, help="user entity list, one per line (--knowledge_spans)")
    group = parser.add_argument_group("runtime")
    group.add_argument("--workers", type=int, default=1, help="worker processes")
    group.add_argument("--log_interval", type=int, default=100, help="refresh the docs/s figure every N documents")
    group.add_argument(
        "--max_line_bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        help="skip (and count) JSON lines longer than this: memory per worker grows with the longest line",
    )
    args = parser.parse_args(argv)
    _check_args(args)
    return args


def _check_args(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise ToolkitError(f"--workers {args.workers}: must be at least 1")
    if args.log_interval < 1:
        raise ToolkitError(f"--log_interval {args.log_interval}: must be at least 1")
    if args.max_line_bytes < 1:
        raise ToolkitError(f"--max_line_bytes {args.max_line_bytes}: must be at least 1")
    if args.split_sentences and not args.chinese:
        # The original fell back to NLTK punkt (English); this toolkit targets Chinese text without that dependency.
        raise ToolkitError(
            "--split_sentences needs --chinese (sentences are split on newlines; NLTK is not supported)"
        )
    if args.entity_dict and not args.knowledge_spans:
        raise ToolkitError("--entity_dict is only used with --knowledge_spans; add that flag")
    if args.cn_splited and not args.cn_whole_word_segment:
        raise ToolkitError("--cn_splited only matters with --cn_whole_word_segment; add that flag or drop it")


def encode_config(args: argparse.Namespace) -> EncodeConfig:
    """The picklable per-worker configuration from the parsed flags."""
    return EncodeConfig(
        model_name=args.model_name,
        tokenizer_name=args.tokenizer_name,
        json_key=args.json_key,
        split_sentences=args.split_sentences,
        chinese=args.chinese,
        whole_word_segment=args.cn_whole_word_segment,
        cn_seg_func=args.cn_seg_func,
        cn_splited=args.cn_splited,
        cn_split_dimer=args.cn_split_dimer,
        append_eos=args.append_eos,
        knowledge_spans=args.knowledge_spans,
        entity_dict=args.entity_dict,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; see `--help`."""
    args = parse_args(argv)
    files = list_jsonl_inputs(args.input_path)
    result = write_pretraining_data(
        args.input_path,
        files,
        encode_config(args),
        args.output_prefix,
        args.workers,
        args.log_interval,
        args.max_line_bytes,
    )
    print(result.summary(args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
