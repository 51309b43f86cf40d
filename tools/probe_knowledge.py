"""Knowledge probe: mask each entity whole and count how often a checkpoint fills it back in (issue 9).

    python tools/probe_knowledge.py --conll data/msra/test.txt --model_dir output/demo/pretrain/model_last --random_init
    python tools/probe_knowledge.py --text_file corpus.jsonl --model_dir out/a/model_last out/b/checkpoint-200

One line per checkpoint on stdout, in the order given, `--random_init` last:
`<dir>: entity_exact_match=<float> char_accuracy=<float> entities=<int>` (4 decimals); `--json FILE` writes the same
figures (plus the skip counts) as a JSON list. Entities that cannot be scored are counted on stderr. The method and
the skip rules: ernie1/tasks/knowledge_probe.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402
from ernie1.common.files import write_errors_as  # noqa: E402

DEFAULT_SEED = 1234


class ToolkitArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one-line ToolkitErrors (run_cli prints them, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ToolkitError(message)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = ToolkitArgumentParser(
        description="ERNIE knowledge probe: entity cloze accuracy of pretraining checkpoints."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--conll", metavar="FILE", help="CoNLL/BIO file (one char and tag per line): gold entities.")
    source.add_argument(
        "--text_file", metavar="FILE", help="One text per line, or .jsonl: entities found by the toolkit's detection."
    )
    parser.add_argument("--json_key", default="text", help="Key of the text in a .jsonl --text_file.")
    parser.add_argument("--entity_dict", default=None, help="User entity list (one per line) for --text_file.")
    parser.add_argument("--cn_seg_func", default="jieba", choices=("jieba", "rjieba"), help="POS tagger.")
    parser.add_argument(
        "--model_dir",
        nargs="+",
        default=[],
        metavar="DIR",
        help="Checkpoints: model_last / model_<step>, converted or raw static checkpoints, Trainer checkpoint-<N>.",
    )
    parser.add_argument("--random_init", action="store_true", help="Also probe a seeded random init (the floor).")
    parser.add_argument(
        "--model_config",
        default=None,
        help="Architecture of --random_init: a model_config.json / config.json or a checkpoint directory "
        "(default: the first --model_dir).",
    )
    parser.add_argument(
        "--vocab_path",
        default=None,
        help="Vocabulary of --random_init: vocab.txt or a directory with one (default: the first --model_dir, "
        "else a --model_config directory).",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Seed of --random_init's weights.")
    parser.add_argument("--max_seq_length", type=positive_int, default=128, help="Tokens per input, [CLS]/[SEP] in.")
    parser.add_argument("--max_entities", type=positive_int, default=None, help="Score at most this many entities.")
    parser.add_argument("--max_sentences", type=positive_int, default=None, help="Read at most this many sentences.")
    parser.add_argument("--batch_size", type=positive_int, default=32, help="Queries per forward.")
    parser.add_argument("--json", default=None, metavar="FILE", help="Also write the results as JSON.")
    return parser


def import_library() -> None:
    """Import paddle and paddlenlp (behind the library) without their import-time warnings (ccache, distutils): not
    actionable for a user of this CLI, and they would bury its one-line errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ernie1.pretrain.masked_lm  # noqa: F401
        import ernie1.tasks.knowledge_probe  # noqa: F401


def read_sentences(args: argparse.Namespace):
    """The probe sentences of --conll or --text_file; an error when they hold no entity."""
    from ernie1.tasks.knowledge_probe import conll_sentences, text_file_sentences
    from ernie1.text.knowledge import EntityDictionary

    if args.conll:
        flag, path = "--conll", args.conll
        sentences = conll_sentences(path, flag, args.max_sentences)
    else:
        flag, path = "--text_file", args.text_file
        entity_dict = EntityDictionary.from_file(args.entity_dict) if args.entity_dict else None
        sentences = text_file_sentences(path, flag, args.json_key, entity_dict, args.cn_seg_func, args.max_sentences)
    if not any(sentence.entities for sentence in sentences):
        raise ToolkitError(f"{flag} {path}: no entities in its {len(sentences)} sentence(s); nothing to probe")
    return sentences


def random_init_model(args: argparse.Namespace):
    """--random_init: the architecture of --model_config or the first --model_dir, the vocabulary of --vocab_path,
    the first --model_dir or a --model_config directory."""
    from ernie1.pretrain.masked_lm import random_masked_lm, read_architecture
    from ernie1.text.tokenizer import load_tokenizer

    first_dir = args.model_dir[0] if args.model_dir else None
    config_dir = args.model_config if args.model_config and Path(args.model_config).is_dir() else None
    architecture = (args.model_config, "--model_config") if args.model_config else (first_dir, "--model_dir")
    vocab_sources = ((args.vocab_path, "--vocab_path"), (first_dir, "--model_dir"), (config_dir, "--model_config"))
    vocab = [(path, flag) for path, flag in vocab_sources if path]
    if architecture[0] is None or not vocab:
        raise ToolkitError(
            "--random_init needs an architecture and a vocabulary: pass --model_dir, or --model_config with "
            "--vocab_path"
        )
    values = read_architecture(*architecture)
    tokenizer = load_tokenizer(vocab[0][0], flag=vocab[0][1])
    where = f"--random_init ({architecture[1]} {architecture[0]})"
    return random_masked_lm(values, tokenizer, args.seed, where)


def probe_one(masked_lm, sentences, args: argparse.Namespace):
    """Probe one model, print its line (and its skips on stderr)."""
    from ernie1.tasks.knowledge_probe import probe
    from ernie1.tasks.spec import check_max_seq_length

    check_max_seq_length(args.max_seq_length, masked_lm.max_positions, "--max_seq_length", masked_lm.name)
    result = probe(masked_lm, sentences, args.max_seq_length, args.max_entities, args.batch_size)
    skipped = result.skipped_not_single_tokens + result.skipped_beyond_max_seq_length
    if skipped:
        print(
            f"{masked_lm.name}: {skipped} {'entity' if skipped == 1 else 'entities'} skipped "
            f"({result.skipped_not_single_tokens} not one known token "
            f"per character, {result.skipped_beyond_max_seq_length} beyond --max_seq_length {args.max_seq_length})",
            file=sys.stderr,
        )
    if result.entities == 0:
        raise ToolkitError(f"{masked_lm.name}: no entity could be scored ({skipped} skipped); see the line above")
    print(result.line(), flush=True)
    return result


def write_json(path: str, results: Sequence) -> None:
    """The results as a JSON list, written to a temporary sibling and renamed (no half-written file)."""
    import json

    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    text = json.dumps([result.to_dict() for result in results], ensure_ascii=False, indent=1) + "\n"
    try:
        with write_errors_as(f"--json {path}"):
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Read the sentences once, then load and probe each checkpoint in turn."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    if not args.model_dir and not args.random_init:
        raise ToolkitError("nothing to probe: pass --model_dir DIR [DIR ...] and/or --random_init")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ToolkitError(f"--json {args.json}: no such directory {Path(args.json).parent}")
    import_library()
    from ernie1.pretrain.masked_lm import load_masked_lm

    sentences = read_sentences(args)
    results: List = []
    for directory in args.model_dir:
        results.append(probe_one(load_masked_lm(directory), sentences, args))
    if args.random_init:
        results.append(probe_one(random_init_model(args), sentences, args))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
