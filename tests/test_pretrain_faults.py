"""Fault battery for the three pretraining entry points (issue 8): data errors, unusable checkpoints, a second run on
the same output_dir, truncated weights, full disks and unwritable outputs. Each gives one line, never a hang."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import paddle
import pytest

import run_pretrain
import run_pretrain_static
import run_pretrain_trainer
from ernie1.common.errors import run_cli
from ernie1.common.formats import COMPLETE_MARKER, META_FILE, OUTPUT_DIR_LOCK_FILE, WEIGHTS_FILE
from ernie1.pretrain.checkpoint import read_meta
from ernie1.pretrain.metrics_logger import read_metrics
from ernie1.pretrain.output_dir import OutputDirLock
from tests.ernie1.pretrain.helpers import tiny_argv, trainer_argv

REPO = Path(__file__).resolve().parents[1]
ENTRIES = {"dygraph": run_pretrain, "static": run_pretrain_static}


@pytest.fixture
def corpus_dir(tiny_prefix):
    return str(Path(tiny_prefix).parent)


def losses(output_dir, split="train"):
    return [(record["step"], record["loss"]) for record in read_metrics(str(output_dir), split)]


def one_line_error(main, argv, capsys) -> str:
    capsys.readouterr()
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- item 2: an exception inside the data path reaches the main loop as one line -------------------------------

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from ernie1.common.errors import run_cli
from ernie1.pretrain import data


class Failing:
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if index >= 6:
            raise ValueError(f"token id 40000 >= vocab size 21128 in sample {{index}}")
        return self.dataset[index]


original = data.build_datasets


def failing_datasets(*args, **kwargs):
    train, valid, test = original(*args, **kwargs)
    return Failing(train), valid, test


data.build_datasets = failing_datasets
import {module} as entry
sys.exit(run_cli(entry.main, sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("entry", ["run_pretrain", "run_pretrain_static", "run_pretrain_trainer"])
def test_a_dataset_error_ends_the_run_with_one_line(entry, num_workers, tmp_path, corpus_dir, vocab_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO), module=entry))
    out = str(tmp_path / "out")
    if entry == "run_pretrain_trainer":
        argv = trainer_argv(corpus_dir, out, str(vocab_path), dataloader_num_workers=num_workers)
    else:
        argv = tiny_argv(corpus_dir, out, str(vocab_path), num_workers=num_workers)
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    # A hang here is the bug (the original waited forever with --num_workers 0): the timeout fails the test.
    result = subprocess.run(
        [sys.executable, str(driver), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Blocking queue is killed" not in result.stderr, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr[-3000:]
    assert re.fullmatch(
        r"error: data error in sample (\d+): ValueError: token id 40000 >= vocab size 21128 in sample \1",
        error_lines[0],
    ), error_lines[0]


# --- items 3 and 5: an unusable model_last falls back; nothing usable is refused -------------------------------


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory, tiny_prefix, vocab_path):
    """Six steps of each engine: snapshots at 2, 4, 6; model_last at 3 and 6."""
    runs = {}
    for name, entry in ENTRIES.items():
        out = tmp_path_factory.mktemp(f"straight_{name}")
        argv = tiny_argv(
            str(Path(tiny_prefix).parent), str(out), str(vocab_path), max_steps=6, save_steps=2, checkpoint_steps=3
        )
        assert entry.main(argv) == 0
        assert paddle.in_dynamic_mode()
        runs[name] = (out, argv)
    return runs


def _resumed_dir(straight: Path, tmp_path: Path, snapshots=(2, 4)) -> Path:
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for step in snapshots:
        shutil.copytree(straight / f"model_{step}", resumed / f"model_{step}")
    shutil.copytree(straight / "model_last", resumed / "model_last")
    return resumed


def _argv_for(argv, straight: Path, resumed: Path):
    return [str(resumed) if value == str(straight) else value for value in argv]


BREAKAGES = {
    "corrupt config.yml": lambda last: (last / META_FILE).write_text("global_step: [unclosed\n"),
    "no COMPLETE marker": lambda last: (last / COMPLETE_MARKER).unlink(),
    "truncated weights": lambda last: truncate(
        last / (WEIGHTS_FILE if (last / WEIGHTS_FILE).is_file() else "static_vars.pdparams")
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.parametrize("engine", sorted(ENTRIES))
def test_unusable_model_last_falls_back_to_the_newest_snapshot(engine, breakage, straight_runs, tmp_path, capsys):
    straight, argv = straight_runs[engine]
    resumed = _resumed_dir(straight, tmp_path)
    BREAKAGES[breakage](resumed / "model_last")
    capsys.readouterr()
    assert ENTRIES[engine].main(_argv_for(argv, straight, resumed)) == 0
    out = capsys.readouterr().out
    assert "resuming from model_4: skipped " in out and f"resumed from {resumed / 'model_4'} at global step 4" in out
    # Steps 5 and 6 continue exactly; the intact snapshots are untouched and the broken model_last is replaced.
    assert losses(resumed) == losses(straight)[4:]
    assert read_meta(resumed / "model_last")["global_step"] == 6
    assert (resumed / "model_2" / COMPLETE_MARKER).is_file() and read_meta(resumed / "model_4")["global_step"] == 4


@pytest.mark.parametrize("engine", sorted(ENTRIES))
def test_checkpoints_none_of_which_is_usable_are_refused_not_overwritten(engine, straight_runs, tmp_path, capsys):
    straight, argv = straight_runs[engine]
    resumed = _resumed_dir(straight, tmp_path, snapshots=(4,))
    (resumed / "model_last" / COMPLETE_MARKER).unlink()
    truncate(resumed / "model_4" / (WEIGHTS_FILE if engine == "dygraph" else "static_vars.pdparams"))
    message = one_line_error(ENTRIES[engine].main, _argv_for(argv, straight, resumed), capsys)
    assert message.startswith(
        f"error: --output_dir {resumed}: holds checkpoints but none is usable (model_last is incomplete; "
        f"{resumed / 'model_4'}/"
    )
    assert message.endswith("repair or remove them, or use a new --output_dir")
    assert not read_metrics(str(resumed))


@pytest.mark.parametrize("engine", sorted(ENTRIES))
def test_a_snapshot_of_another_run_state_is_kept_not_overwritten(engine, straight_runs, tmp_path):
    straight, argv = straight_runs[engine]
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    # model_last is the run state at step 2; a model_4 from another timeline is there too.
    shutil.copytree(straight / "model_2", resumed / "model_last")
    shutil.copytree(straight / "model_4", resumed / "model_4")
    (resumed / "model_4" / "from_another_run").write_text("x")
    assert ENTRIES[engine].main(_argv_for(argv, straight, resumed)) == 0
    assert (resumed / "model_4.earlier-1" / "from_another_run").is_file()
    assert (
        read_meta(resumed / "model_4")["global_step"] == 4 and not (resumed / "model_4" / "from_another_run").exists()
    )


@pytest.mark.parametrize("engine", sorted(ENTRIES))
def test_warm_start_from_truncated_weights_names_the_file(engine, straight_runs, tmp_path, capsys):
    straight, argv = straight_runs[engine]
    source = tmp_path / "source"
    shutil.copytree(straight / "model_6", source)
    weights = source / (WEIGHTS_FILE if engine == "dygraph" else "static_vars.pdparams")
    truncate(weights)
    argv = tiny_argv(
        str(Path(argv[argv.index("--input_dir") + 1])),
        str(tmp_path / "out"),
        argv[argv.index("--tokenizer_name_or_path") + 1],
        max_steps=1,
        model_name_or_path=str(source),
        continue_training="true",
    )
    index = argv.index("--model_config")
    del argv[index : index + 2]
    message = one_line_error(ENTRIES[engine].main, argv, capsys)
    assert str(weights) in message or f"--model_name_or_path {source}: {weights.name}" in message, message
    assert "unreadable" in message or "not a paddle.static.save parameter file" in message, message


# --- item 3/5 for the Trainer: a truncated checkpoint-N falls back or is one line -------------------------------


@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory, tiny_prefix, vocab_path):
    out = tmp_path_factory.mktemp("trainer_straight")
    argv = trainer_argv(str(Path(tiny_prefix).parent), str(out), str(vocab_path), save_steps=2, max_steps=6)
    assert run_pretrain_trainer.main(argv) == 0
    return out, argv


def test_trainer_falls_back_from_a_truncated_checkpoint(trainer_run, tmp_path, capsys):
    straight, argv = trainer_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for step in (2, 4):
        shutil.copytree(straight / f"checkpoint-{step}", resumed / f"checkpoint-{step}")
    truncate(resumed / "checkpoint-4" / WEIGHTS_FILE)
    capsys.readouterr()
    assert run_pretrain_trainer.main(_argv_for(argv, straight, resumed)) == 0
    assert "resuming from checkpoint-2: skipped " in capsys.readouterr().out
    assert [step for step, _ in losses(resumed)] == [3, 4, 5, 6]
    assert losses(resumed) == losses(straight)[2:]


def test_trainer_resume_from_a_truncated_checkpoint_is_one_line(trainer_run, tmp_path, capsys):
    straight, argv = trainer_run
    broken = tmp_path / "checkpoint-4"
    shutil.copytree(straight / "checkpoint-4", broken)
    truncate(broken / "optimizer.pdopt")
    argv = _argv_for(argv, straight, tmp_path / "out") + ["--resume_from_checkpoint", str(broken)]
    message = one_line_error(run_pretrain_trainer.main, argv, capsys)
    assert message.startswith(f"error: --resume_from_checkpoint {broken}: {broken / 'optimizer.pdopt'}: unreadable")


# --- item 4: one run per output_dir ---------------------------------------------------------------------------

HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from ernie1.pretrain.output_dir import OutputDirLock
lock = OutputDirLock({directory!r})
assert lock.acquire() is None
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held_output_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(repo=str(REPO), directory=str(out))], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield out, holder
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("entry", ["dygraph", "static", "trainer"])
def test_a_second_run_on_a_locked_output_dir_is_refused_until_the_holder_dies(
    entry, held_output_dir, corpus_dir, vocab_path, capsys
):
    out, holder = held_output_dir
    if entry == "trainer":
        main, argv = run_pretrain_trainer.main, trainer_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    else:
        main, argv = ENTRIES[entry].main, tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    message = one_line_error(main, argv, capsys)
    assert message == (
        f"error: --output_dir {out}: in use by another run (PID {holder.pid}); wait for it to finish or use another "
        "--output_dir"
    )
    assert not list(out.glob("model_*")) and not list(out.glob("checkpoint-*"))
    # kill -9 releases the lock; the PID left in the file is stale and the next run takes over.
    holder.kill()
    holder.wait()
    assert (out / OUTPUT_DIR_LOCK_FILE).read_text().strip() == str(holder.pid)
    assert main(argv) == 0
    # Released at exit, also after a failed run in the same process.
    lock = OutputDirLock(str(out))
    assert lock.acquire() is None
    lock.release()


def test_the_lock_is_released_when_a_run_fails(tmp_path, corpus_dir, vocab_path, capsys):
    out = tmp_path / "out"
    one_line_error(run_pretrain.main, tiny_argv(corpus_dir, str(out), str(vocab_path), max_seq_len=256), capsys)
    lock = OutputDirLock(str(out))
    assert lock.acquire() is None
    lock.release()


# --- item 10: full disk, unwritable or file output_dir ---------------------------------------------------------


@pytest.mark.parametrize("engine", sorted(ENTRIES))
def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_temporaries(
    engine, tmp_path, corpus_dir, vocab_path, capsys, monkeypatch
):
    import ernie1.pretrain.checkpoint as checkpoint

    out = tmp_path / "out"
    # model_last at step 2, then the disk fills up: the final snapshot model_4 cannot be written.
    argv = tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=4, checkpoint_steps=2, save_steps=0)
    real_save = paddle.save

    def save_until_the_disk_is_full(obj, path, *args, **kwargs):
        if read_metrics(str(out)) and read_metrics(str(out))[-1]["step"] >= 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    # Every checkpoint writes its parts with paddle.save first (the static engine too: RNG and training state).
    monkeypatch.setattr(checkpoint.paddle, "save", save_until_the_disk_is_full)
    message = one_line_error(ENTRIES[engine].main, argv, capsys)
    assert message == (
        f"error: {out / 'model_4'}: cannot write the checkpoint (No space left on device); free space or fix "
        "permissions, then resume from the previous checkpoint"
    )
    assert sorted(path.name for path in out.iterdir() if path.name.startswith((".model", "model"))) == ["model_last"]
    assert read_meta(out / "model_last")["global_step"] == 2
    assert paddle.in_dynamic_mode()


@pytest.mark.parametrize("entry", ["dygraph", "static", "trainer"])
def test_a_file_as_output_dir_is_one_line(entry, tmp_path, corpus_dir, vocab_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("not a directory")
    if entry == "trainer":
        main, argv = run_pretrain_trainer.main, trainer_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    else:
        main, argv = ENTRIES[entry].main, tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    assert one_line_error(main, argv, capsys) == f"error: --output_dir {out}: is a file, not a directory"


@pytest.mark.parametrize("entry", ["dygraph", "trainer"])
def test_an_unwritable_output_dir_is_one_line(entry, tmp_path, corpus_dir, vocab_path, capsys, monkeypatch):
    out = tmp_path / "readonly"
    real_write = Path.write_bytes

    def read_only(path, data):
        if Path(path).parent == out:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_write(path, data)

    # Running as root ignores permission bits: the read-only filesystem is simulated at the write.
    monkeypatch.setattr(Path, "write_bytes", read_only)
    if entry == "trainer":
        main, argv = run_pretrain_trainer.main, trainer_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    else:
        main, argv = run_pretrain.main, tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    assert one_line_error(main, argv, capsys) == f"error: --output_dir {out}: not writable (Read-only file system)"


@pytest.mark.slow
def test_a_locked_output_dir_refuses_a_data_parallel_launch_without_a_hang(
    held_output_dir, tmp_path, corpus_dir, vocab_path
):
    out, holder = held_output_dir
    env = {
        key: value for key, value in os.environ.items() if key not in ("CUDA_VISIBLE_DEVICES", "PADDLE_TRAINERS_NUM")
    }
    argv = tiny_argv(corpus_dir, str(out), str(vocab_path), max_steps=1)
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir"]
    command += [str(tmp_path / "log"), "run_pretrain.py", *argv]
    # Rank 0 is refused the lock; rank 1 learns it through a collective instead of waiting forever.
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode != 0
    logs = {path.name: path.read_text(errors="replace") for path in (tmp_path / "log").glob("workerlog.*")}
    expected = f"error: --output_dir {out}: in use by another run (PID {holder.pid});"
    assert expected in logs["workerlog.0"], logs
    assert "error: --output_dir" in logs["workerlog.1"] and "Traceback" not in logs["workerlog.1"], logs
