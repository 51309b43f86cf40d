"""Build a WordPiece vocab.txt (CJK characters as single tokens) from a jsonl corpus, optionally `##`-CJK extended.

Usage:
    python -m data_tools.build_vocab --input_path corpus.jsonl --output_path vocab/vocab.txt --vocab_size 30000
    python -m data_tools.build_vocab --base_vocab vocab.txt --output_path vocab_ext.txt --extend_chinese_char

Selection rule (after the basic tokenizer: lower-casing, accent stripping, CJK and punctuation split):
1. `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0..4).
2. Every character seen at least `--min_frequency` times, and the `##<c>` form of every such character that occurs
   inside a non-CJK word, so WordPiece can always fall back to single characters (no [UNK] for seen characters).
3. The remaining slots go, by descending corpus count (ties alphabetical), to pieces counted over the non-CJK words:
   the whole word, its prefixes of 2+ characters, and `##` + its suffixes of 2+ characters, each counted with the
   word's frequency; only pieces with count >= `--min_frequency` qualify.
`--extend_chinese_char` then appends `##<c>` for every single CJK vocab character (U+4E00-U+9FA5) that lacks one, in
vocab order: the ids match `ernie1.text.tokenizer.extend_chinese_char` on the base vocab.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Counter, Iterator, List, Optional, Sequence, Tuple

if __name__ == "__main__" and not __package__:
    # Run as a file: sys.path[0] is data_tools/, whose module names could shadow top-level ones; use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402
from ernie1.text.cjk import cjk_extension_tokens  # noqa: E402

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


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


def jsonl_files(input_path: str) -> List[Path]:
    """The sorted .jsonl files named by `--input_path`."""
    path = Path(input_path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        if not files:
            raise ToolkitError(f"--input_path {input_path}: no *.jsonl file in this directory")
        return files
    raise ToolkitError(f"--input_path {input_path}: no such file or directory")


def iter_texts(files: Sequence[Path], json_key: str) -> Iterator[str]:
    """Each document's text; a malformed line raises a ToolkitError naming file and line."""
    for path in files:
        try:
            handle = open(path, encoding="utf-8")
        except OSError as error:
            raise ToolkitError(f"--input_path {path}: cannot read ({error.strerror})") from None
        with handle:
            try:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    yield _text_of_line(path, number, line, json_key)
            except UnicodeDecodeError:
                raise ToolkitError(f"--input_path {path}: not UTF-8 text") from None


def _text_of_line(path: Path, number: int, line: str, json_key: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise ToolkitError(f"--input_path {path}:{number}: not a JSON object per line (jsonl)") from None
    if not isinstance(record, dict) or json_key not in record:
        raise ToolkitError(f"--input_path {path}:{number}: no key {json_key!r} (set --json_key)")
    text = record[json_key]
    if not isinstance(text, str):
        raise ToolkitError(f"--input_path {path}:{number}: {json_key!r} is not a string")
    return text


def count_corpus(texts: Iterator[str], lower: bool) -> Tuple[Counter[str], Counter[str]]:
    """(character counts, non-CJK word counts) over the basic tokenizer's output."""
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    basic = BasicTokenizer(do_lower_case=lower)
    chars: Counter[str] = collections.Counter()
    words: Counter[str] = collections.Counter()
    for text in texts:
        for token in basic.tokenize(text):
            if len(token) == 1:
                chars[token] += 1
            else:
                words[token] += 1
    for word, count in words.items():
        for char in word:
            chars[char] += count
    return chars, words


def select_vocab(
    chars: Counter[str], words: Counter[str], vocab_size: int, min_frequency: int, max_piece_chars: int
) -> List[str]:
    """The base vocab in id order, by the rule in the module docstring."""
    kept_chars = sorted((c for c, n in chars.items() if n >= min_frequency), key=lambda c: (-chars[c], c))
    inner_chars = {c for word in words for c in word[1:]}
    required = list(SPECIAL_TOKENS) + kept_chars + ["##" + c for c in kept_chars if c in inner_chars]
    if vocab_size < len(required):
        raise ToolkitError(
            f"--vocab_size {vocab_size}: too small for the {len(required)} special tokens and single characters "
            f"seen >= --min_frequency {min_frequency} times; raise --vocab_size or --min_frequency"
        )
    pieces: Counter[str] = collections.Counter()
    for word, count in words.items():
        for end in range(2, min(len(word), max_piece_chars) + 1):
            pieces[word[:end]] += count
        for start in range(max(1, len(word) - max_piece_chars), len(word) - 1):
            pieces["##" + word[start:]] += count
    taken = set(required)
    ranked = sorted(
        (p for p, n in pieces.items() if n >= min_frequency and p not in taken), key=lambda p: (-pieces[p], p)
    )
    return required + ranked[: vocab_size - len(required)]


def read_vocab(path: str) -> List[str]:
    """Tokens of a vocab.txt, one per line, in id order."""
    file = Path(path)
    if not file.is_file():
        raise ToolkitError(f"--base_vocab {path}: no such file")
    try:
        # Not splitlines(): vocabs hold tokens such as U+2028 or U+0085 that it would treat as line breaks.
        tokens = [line.rstrip("\r") for line in file.read_text(encoding="utf-8").split("\n")]
    except UnicodeDecodeError:
        raise ToolkitError(f"--base_vocab {path}: not UTF-8 text") from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ToolkitError(f"--base_vocab {path}: missing special tokens {' '.join(missing)}")
    return tokens


def write_vocab(tokens: Sequence[str], output_path: str) -> Path:
    """Write one token per line (parent directories created, written atomically)."""
    path = Path(output_path)
    if path.is_dir():
        raise ToolkitError(f"--output_path {output_path}: is a directory; name the vocab file, e.g. vocab.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    partial.replace(path)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build (or extend) a vocab and write it to `--output_path`."""
    args = parse_args(argv)
    if args.base_vocab is not None:
        tokens = read_vocab(args.base_vocab)
    else:
        chars, words = count_corpus(iter_texts(jsonl_files(args.input_path), args.json_key), not args.cased)
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
