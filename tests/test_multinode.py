"""Multi-node on one machine: two `paddle.distributed.launch` launchers as nodes 0 and 1 of one job (one CPU process
each) train exactly as one node with two processes (the launchers' IPS mode, README "Several nodes")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ernie1.pretrain.metrics_logger import read_metrics
from tests.ernie1.pretrain.helpers import tiny_argv
from tests.support import launch_cpu_ranks

REPO = Path(__file__).resolve().parents[1]
COMMON = dict(
    max_steps=4,
    micro_batch_size=2,
    global_batch_size=4,
    eval_freq=2,
    eval_iters=1,
    save_steps=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_env() -> dict:
    # paddle.distributed.launch treats any CUDA_VISIBLE_DEVICES (even empty) as a GPU job and fails on a CPU build.
    return {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}


def launch(launch_flags, argv, log_dir) -> subprocess.Popen:
    command = [sys.executable, "-m", "paddle.distributed.launch", *launch_flags, "--log_dir", str(log_dir)]
    return subprocess.Popen(
        [*command, "run_pretrain.py", *argv],
        cwd=REPO,
        env=launcher_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_all(processes, log_dirs, timeout=300) -> None:
    try:
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    logs = "".join(p.read_text() for d in log_dirs if Path(d).exists() for p in sorted(Path(d).glob("*")))
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, (output + logs)[-3000:]


def losses(output_dir, split):
    return [(record["step"], record["loss"]) for record in read_metrics(output_dir, split)]


@pytest.mark.slow
def test_two_nodes_on_localhost_train_as_one_node_with_two_processes(tmp_path, tiny_prefix, vocab_path):
    corpus = str(Path(tiny_prefix).parent)
    one_node, two_nodes = tmp_path / "one_node", tmp_path / "two_nodes"
    one_node_argv = tiny_argv(corpus, str(one_node), str(vocab_path), **COMMON)
    result = launch_cpu_ranks(["run_pretrain.py", *one_node_argv], cwd=REPO, log_dir=tmp_path / "l")
    assert result.returncode == 0, result.stderr[-3000:]
    master = f"127.0.0.1:{free_port()}"
    argv = tiny_argv(corpus, str(two_nodes), str(vocab_path), **COMMON)
    nodes = [
        launch(
            ["--nnodes", "2", "--rank", str(rank), "--master", master, "--nproc_per_node", "1"],
            argv,
            tmp_path / f"n{rank}",
        )
        for rank in (0, 1)
    ]
    wait_all(nodes, [tmp_path / "n0", tmp_path / "n1"])
    for split in ("train", "valid", "test"):
        expected, got = losses(one_node, split), losses(two_nodes, split)
        assert [step for step, _ in got] == [step for step, _ in expected] and got
        assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=1e-5, abs=1e-5)
    assert sorted(p.name for p in two_nodes.iterdir() if p.name.startswith("model_")) == ["model_2", "model_4"]
