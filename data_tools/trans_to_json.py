"""Stage 1: raw text files (one sentence per line, blank line between documents) -> JSON lines `{"text": doc}`.

python data_tools/trans_to_json.py --input_path ./clue_corpus_small_14g --output_path clue_corpus_small_14g.jsonl
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
from ernie1.common.formats import JSONL_SUFFIX  # noqa: E402
from ernie1.text.raw_corpus import ConvertOptions, OutputOptions, convert_corpus, list_input_files  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_path", required=True, help="a text file, or a directory walked recursively")
    parser.add_argument("--output_path", required=True, help="merged .jsonl file (a directory with --no-merge)")
    parser.add_argument("--json_key", default="text", help="key of the document text in each JSON line")
    parser.add_argument("--doc_spliter", default="", help="a line equal to this (stripped) ends a document")
    parser.add_argument("--min_doc_length", type=int, default=10, help="keep documents longer than this (chars)")
    parser.add_argument("--workers", type=int, default=1, help="processes, one input file at a time each")
    parser.add_argument("--log_interval", type=int, default=1, help="print progress every N files")
    parser.add_argument("--no-merge", dest="no_merge", action="store_true", help="keep one .jsonl per input file")
    parser.add_argument("--no-shuffle", dest="no_shuffle", action="store_true", help="keep the input order")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the deterministic shuffle")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise ToolkitError(f"--workers {args.workers}: must be at least 1")
    if args.log_interval < 1:
        raise ToolkitError(f"--log_interval {args.log_interval}: must be at least 1")
    return args


def output_options(args: argparse.Namespace) -> OutputOptions:
    """Where to write: `--output_path` (`.jsonl` appended to a merged file's name when missing)."""
    output = Path(args.output_path)
    if not args.no_merge and not output.name.endswith(JSONL_SUFFIX):
        output = output.with_name(output.name + JSONL_SUFFIX)
    return OutputOptions(
        output=output,
        merge=not args.no_merge,
        shuffle=not args.no_shuffle,
        seed=args.seed,
        workers=args.workers,
        log_interval=args.log_interval,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; see `--help`."""
    args = parse_args(argv)
    files = list_input_files(args.input_path)
    output = output_options(args)
    options = ConvertOptions(args.json_key, args.doc_spliter, args.min_doc_length)
    stats = convert_corpus(args.input_path, files, options, output)
    print(
        f"trans_to_json: {len(files)} files, {stats.documents} documents written to {output.output}, "
        f"{stats.short_documents} short documents dropped, {stats.undecodable_lines} undecodable lines skipped, "
        f"{stats.unreadable_files} unreadable files skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
