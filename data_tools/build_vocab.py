"""Build a WordPiece vocab.txt (CJK characters as single tokens) from a jsonl corpus, optionally `##`-CJK extended.

Usage:
    python -m data_tools.build_vocab --input_path corpus.jsonl --output_path vocab/vocab.txt --vocab_size 30000
    python -m data_tools.build_vocab --base_vocab vocab.txt --output_path vocab_ext.txt --extend_chinese_char

The selection rule is in `ernie1.text.vocab`; `--extend_chinese_char` appends `##<c>` for every single CJK vocab
character (U+4E00-U+9FA5) that lacks one, with the ids `ernie1.text.tokenizer.extend_chinese_char` gives.
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
from ernie1.text.cjk import cjk_extension_tokens  # noqa: E402
from ernie1.text.jsonl_corpus import list_jsonl_inputs  # noqa: E402
from ernie1.text.tokenizer import read_vocab_file  # noqa: E402
from ernie1.text.vocab import count_corpus, iter_texts, select_vocab, write_vocab  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input_path", help="a .jsonl file, or a directory searched recursively for *.jsonl")
    parser.add_argument("--json_key", default="text", help="the key holding each document's text")
    parser.add_argument("--output_path", required=True, help="where to write vocab.txt (parent dirs are created)")
    parser.add_argument(
        "--vocab_size", type=int, default=30000, help="maximum size of the base vocab (the extension comes on top)"
    )
    parser.add_argument("--min_frequency", type=int, default=5, help="minimum count of a character or piece")
    parser.add_argument("--max_piece_chars", type=int, default=16, help="longest prefix/suffix piece considered")
    parser.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case)")
    parser.add_argument("--base_vocab", help="extend this existing vocab instead of building one from a corpus")
    parser.add_argument(
        "--extend_chinese_char", action="store_true", help="append ##<c> for every CJK char lacking one"
    )
    args = parser.parse_args(argv)
    if args.base_vocab is None and args.input_path is None:
        raise ToolkitError("--input_path is required (or pass --base_vocab to extend an existing vocab)")
    if args.base_vocab is not None and not args.extend_chinese_char:
        raise ToolkitError("--base_vocab only makes sense with --extend_chinese_char")
    if args.vocab_size < 1:
        raise ToolkitError(f"--vocab_size {args.vocab_size}: must be positive")
    if args.min_frequency < 1:
        raise ToolkitError(f"--min_frequency {args.min_frequency}: must be at least 1")
    if args.max_piece_chars < 2:
        raise ToolkitError(f"--max_piece_chars {args.max_piece_chars}: must be at least 2")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build (or extend) a vocab and write it to `--output_path`."""
    args = parse_args(argv)
    if args.base_vocab is not None:
        tokens = read_vocab_file(Path(args.base_vocab), "--base_vocab")
    else:
        chars, words = count_corpus(iter_texts(list_jsonl_inputs(args.input_path), args.json_key), not args.cased)
        if not chars:
            raise ToolkitError(f"--input_path {args.input_path}: no text found under key {args.json_key!r}")
        tokens = select_vocab(chars, words, args.vocab_size, args.min_frequency, args.max_piece_chars)
    base_size = len(tokens)
    if args.extend_chinese_char:
        tokens = list(tokens) + cjk_extension_tokens(tokens)
    path = write_vocab(tokens, args.output_path)
    print(f"wrote {path}: {base_size} base tokens + {len(tokens) - base_size} ##-CJK extension tokens")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
