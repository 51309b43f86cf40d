"""Predict with any model exported by `finetune/run_*.py --do_export`: the task comes from export_config.json.

    python deploy/predict.py --model_dir <output_dir>/export [TEXT ...]            # seq_cls, ner
    python deploy/predict.py --model_dir <output_dir>/export --input_file FILE     # one text per line; - = stdin
    python deploy/predict.py --model_dir <qa export> --input_file qa.jsonl         # {"context": ..., "question": ...}
    python deploy/predict.py --model_dir <qa export> --context TEXT --question TEXT

Output, one line per input: seq_cls `Data: <text> \t Label: <label>`; ner `Data: <text> \t Entities: <type>:<span>, ...`;
qa `Question: <question> \t Answer: <answer>`. An empty input or a line that is not UTF-8 is an error (deploy/inputs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Sequence  # noqa: E402

from deploy.inputs import one_line, read_input_lines, read_texts  # noqa: E402
from deploy.predictor import ExportedModel, add_predictor_flags  # noqa: E402
from ernie1.common.errors import ToolkitError, run_cli  # noqa: E402
from ernie1.tasks.spec import EvalSet, TaskSettings  # noqa: E402


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


def read_qa_inputs(args: argparse.Namespace) -> List[Dict[str, str]]:
    """[{context, question}] from --context/--question or a JSONL --input_file."""
    if args.context or args.question:
        if not (args.context and args.question):
            raise ToolkitError("qa needs both --context and --question")
        return [{"context": args.context, "question": args.question}]
    if not args.input_file:
        raise ToolkitError("qa needs --context and --question, or --input_file with JSON lines {context, question}")
    items = []
    for line_number, line in enumerate(read_input_lines(args.input_file), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ToolkitError(f"--input_file {args.input_file} line {line_number}: not JSON ({error.msg})") from error
        if not isinstance(record, dict) or not record.get("context") or not record.get("question"):
            raise ToolkitError(f"--input_file {args.input_file} line {line_number}: needs 'context' and 'question'")
        items.append({"context": str(record["context"]), "question": str(record["question"])})
    return items


def seq_cls_lines(items: Sequence[str], eval_set: EvalSet, predictions: List[int]) -> List[str]:
    return [f"Data: {one_line(t)} \t Label: {n}" for t, n in zip(items, eval_set.label_names(predictions))]


def ner_lines(items: Sequence[str], eval_set: EvalSet, predictions: List[List[str]]) -> List[str]:
    rendered = [", ".join(f"{e['type']}:{e['text']}" for e in entities) for entities in eval_set.entities(predictions)]
    return [f"Data: {one_line(text)} \t Entities: {line}" for text, line in zip(items, rendered)]


def qa_lines(items: Sequence[Dict[str, str]], eval_set: EvalSet, predictions: List[Dict[str, Any]]) -> List[str]:
    return [
        f"Question: {one_line(i['question'])} \t Answer: {one_line(a['text'])}" for i, a in zip(items, predictions)
    ]


# Per task: how to read the inputs from the flags, and how to print one line per input.
TASK_IO: Dict[str, tuple] = {
    "seq_cls": (require_texts, seq_cls_lines),
    "ner": (require_texts, ner_lines),
    "qa": (read_qa_inputs, qa_lines),
}


def predict_lines(model: ExportedModel, items: Sequence[Any], batch_size: int, settings: TaskSettings) -> List[str]:
    """One output line per input item."""
    format_lines: Callable = TASK_IO[model.task.name][1]
    eval_set, predictions = model.predict(items, batch_size, settings)
    return format_lines(items, eval_set, predictions)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Load the export, read the inputs its task takes, print one line per input."""
    args = build_parser().parse_args(argv)
    model = ExportedModel.load(args.model_dir, args.device, args.cpu_threads, args.enable_mkldnn)
    settings = model.settings(args.max_seq_length)
    items = TASK_IO[model.task.name][0](args)
    for line in predict_lines(model, items, args.batch_size, settings):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
