"""Shared bits for the pretraining tests: the tiny-model command line."""

from __future__ import annotations

from typing import List

TINY_MODEL = (
    "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128,max_position_embeddings=128"
)


def tiny_argv(prefix: str, output_dir: str, vocab: str, *extra: str, **overrides) -> List[str]:
    """Flags for a 2-layer hidden-64 model on the tiny corpus, seq 64, CPU, no workers; `overrides` replace defaults."""
    flags = {
        "model_name_or_path": "ernie-1.0",
        "tokenizer_name_or_path": vocab,
        "model_config": TINY_MODEL,
        "input_dir": prefix,
        "output_dir": output_dir,
        "split": "8,1,1",
        "max_seq_len": "64",
        "micro_batch_size": "4",
        "max_steps": "8",
        "max_lr": "5e-3",
        "min_lr": "1e-4",
        "warmup_rate": "0.1",
        "eval_freq": "4",
        "eval_iters": "2",
        "save_steps": "1000",
        "checkpoint_steps": "1000",
        "logging_freq": "1",
        "device": "cpu",
        "num_workers": "0",
        "seed": "7",
    }
    flags.update({key: str(value) for key, value in overrides.items()})
    argv = []
    for key, value in flags.items():
        argv += [f"--{key}", value]
    return argv + list(extra)


def trainer_argv(corpus: str, output_dir: str, vocab: str, *extra: str, do=("train", "eval", "predict"), **overrides):
    """Trainer flags for the tiny config on CPU; `overrides` replace defaults (value None drops the flag)."""
    flags = {
        "model_name_or_path": "ernie-1.0",
        "tokenizer_name_or_path": vocab,
        "model_config": TINY_MODEL,
        "input_dir": corpus,
        "output_dir": output_dir,
        "split": "8,1,1",
        "max_seq_length": "64",
        "per_device_train_batch_size": "4",
        "per_device_eval_batch_size": "4",
        "max_steps": "8",
        "learning_rate": "5e-3",
        "min_learning_rate": "1e-4",
        "warmup_ratio": "0.1",
        "eval_steps": "4",
        "eval_iters": "2",
        "save_steps": "4",
        "logging_steps": "1",
        "device": "cpu",
        "dataloader_num_workers": "0",
        "seed": "7",
        "report_to": "none",
        "disable_tqdm": "true",
    }
    flags.update({key: value for key, value in overrides.items()})
    argv = []
    for key, value in flags.items():
        if value is not None:
            argv += [f"--{key}", str(value)]
    return argv + [f"--do_{what}" for what in do] + list(extra)
