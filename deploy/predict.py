"""Predict with any model exported by `finetune/run_*.py --do_export`: the task comes from export_config.json.

    python deploy/predict.py --model_dir <output_dir>/export [TEXT ...]            # seq_cls, ner
    python deploy/predict.py --model_dir <output_dir>/export --input_file FILE     # one text per line; - = stdin
    python deploy/predict.py --model_dir <qa export> --input_file qa.jsonl         # {"context": ..., "question": ...}
    python deploy/predict.py --model_dir <qa export> --context TEXT --question TEXT

Output, one line per input: seq_cls `Data: <text> \t Label: <label>`; ner `Data: <text> \t Entities: <type>:<span>, ...`;
qa `Question: <question> \t Answer: <answer>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from deploy.predictor import ExportedModel, add_predictor_flags, batched, classify, pad_batch, read_texts  # noqa: E402
from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Flags shared by every task, plus --context/--question for QA."""
    parser = argparse.ArgumentParser(description="Predict with an exported ERNIE model (seq_cls, ner or qa).")
    parser.add_argument("texts", nargs="*", help="Texts to predict (seq_cls, ner).")
    parser.add_argument(
        "--model_dir", required=True, help="Export directory (inference.json, export_config.json, ...)."
    )
    parser.add_argument(
        "--input_file", default=None, help="One text per line (qa: JSONL with context/question); - = stdin."
    )
    parser.add_argument("--context", default=None, help="QA: the passage.")
    parser.add_argument("--question", default=None, help="QA: the question about --context.")
    add_predictor_flags(parser, batch_size=8)
    return parser


def require_texts(args: argparse.Namespace) -> List[str]:
    """Texts from arguments or --input_file; an error when there are none."""
    texts = read_texts(args.texts, args.input_file)
    if not texts:
        raise ToolkitError("no texts to predict; pass them as arguments or with --input_file")
    return texts


def predict_seq_cls(model: ExportedModel, args: argparse.Namespace) -> List[str]:
    """`Data: <text> \t Label: <label>` per text."""
    texts = require_texts(args)
    results = classify(model, texts, args.batch_size, args.max_seq_length)
    return [f"Data: {text} \t Label: {label}" for text, (label, _) in zip(texts, results)]


def text_to_words(text: str) -> List[str]:
    """Char-level words, as the NER training data (MSRA, People's Daily) is labelled; whitespace dropped."""
    return [char for char in text if not char.isspace()]


def predict_ner(model: ExportedModel, args: argparse.Namespace) -> List[str]:
    """`Data: <text> \t Entities: <type>:<span>, ...` per text, decoded by ernie1.tasks.ner."""
    from ernie1.tasks.ner import WordPieceCache, decode_entities, encode_words

    texts = require_texts(args)
    label_list = model.config.get("label_list")
    if not label_list:
        raise ToolkitError(f"--model_dir {args.model_dir}: export_config.json has no label_list; re-export")
    max_seq_length = int(args.max_seq_length or model.config.get("max_seq_length", 128))
    pieces = WordPieceCache(model.tokenizer)
    lines = []
    for chunk in batched(texts, args.batch_size):
        words = [text_to_words(text) for text in chunk]
        features = [encode_words(w, model.tokenizer, max_seq_length, pieces=pieces) for w in words]
        encoded = [{"input_ids": f.input_ids, "token_type_ids": f.token_type_ids} for f in features]
        logits = model.run(pad_batch(encoded, model.tokenizer.pad_token_id, model.input_names))[0]
        for row, (text, feature) in enumerate(zip(chunk, features)):
            entities = decode_entities(words[row], logits[row], feature.word_ids, label_list)
            rendered = ", ".join(f"{entity['type']}:{entity['text']}" for entity in entities)
            lines.append(f"Data: {text} \t Entities: {rendered}")
    return lines


def read_qa_inputs(args: argparse.Namespace) -> List[Dict[str, str]]:
    """[{context, question}] from --context/--question or a JSONL --input_file."""
    if args.context or args.question:
        if not (args.context and args.question):
            raise ToolkitError("qa needs both --context and --question")
        return [{"context": args.context, "question": args.question}]
    if not args.input_file:
        raise ToolkitError("qa needs --context and --question, or --input_file with JSON lines {context, question}")
    items = []
    for line_number, line in enumerate(read_texts([], args.input_file), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ToolkitError(
                f"--input_file {args.input_file}: item {line_number}: not JSON ({error.msg})"
            ) from error
        if not isinstance(record, dict) or not record.get("context") or not record.get("question"):
            raise ToolkitError(f"--input_file {args.input_file}: item {line_number}: needs 'context' and 'question'")
        items.append({"context": str(record["context"]), "question": str(record["question"])})
    return items


def predict_qa(model: ExportedModel, args: argparse.Namespace) -> List[str]:
    """`Question: <question> \t Answer: <answer>` per item, windowed and decoded by ernie1.tasks.qa."""
    from ernie1.tasks.qa import QaExample, build_features, extract_answers

    items = read_qa_inputs(args)
    config = model.config
    examples = [QaExample(str(i), item["question"], item["context"]) for i, item in enumerate(items)]
    features = build_features(
        examples,
        model.tokenizer,
        int(args.max_seq_length or config.get("max_seq_length", 384)),
        int(config.get("doc_stride", 128)),
        int(config.get("max_query_length", 64)),
    )
    start_rows: List[np.ndarray] = []
    end_rows: List[np.ndarray] = []
    for chunk in batched(features, args.batch_size):
        encoded = [{"input_ids": f.input_ids, "token_type_ids": f.token_type_ids} for f in chunk]
        start_logits, end_logits = model.run(pad_batch(encoded, model.tokenizer.pad_token_id, model.input_names))[:2]
        start_rows.extend(start_logits)
        end_rows.extend(end_logits)
    answers = extract_answers(
        [example.context for example in examples],
        features,
        start_rows,
        end_rows,
        n_best_size=int(config.get("n_best_size", 20)),
        max_answer_length=int(config.get("max_answer_length", 30)),
    )
    return [f"Question: {item['question']} \t Answer: {answer['text']}" for item, answer in zip(items, answers)]


TASKS: Dict[str, Callable[[ExportedModel, argparse.Namespace], List[str]]] = {
    "seq_cls": predict_seq_cls,
    "ner": predict_ner,
    "qa": predict_qa,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Load the export, dispatch on its task, print one line per input."""
    args = build_parser().parse_args(argv)
    model = ExportedModel.load(args.model_dir, args.device, args.cpu_threads, args.enable_mkldnn)
    if model.task not in TASKS:
        raise ToolkitError(f"--model_dir {args.model_dir}: unknown task {model.task!r} in export_config.json")
    for line in TASKS[model.task](model, args):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
