from ernie1.data.indexed_dataset import MMapIndexedDataset


def test_tiny_prefix_is_readable_and_consistent(tiny_prefix):
    dataset = MMapIndexedDataset(tiny_prefix)
    assert len(dataset.doc_idx) == 41
    assert dataset.sizes.sum() == len(dataset.ids)
    assert all(len(dataset[i]) > 0 for i in range(len(dataset)))


def test_a_rank_killed_by_a_signal_is_retried_once_and_a_program_error_is_not(tmp_path):
    from tests.support import launch_cpu_ranks

    # A stand-in launcher: aborts (launcher line "code -6") until a marker exists, like a flaky gloo rendezvous.
    marker = tmp_path / "seen"
    program = tmp_path / "flaky.py"
    program.write_text(
        "import os, sys\n"
        f"marker = {str(marker)!r}\n"
        "if os.environ.get('PADDLE_TRAINER_ID') == '0' and not os.path.exists(marker):\n"
        "    open(marker, 'w').close(); os.abort()\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    result = launch_cpu_ranks([str(program), "0"], cwd=tmp_path, log_dir=tmp_path / "log", timeout=120)
    assert result.returncode == 0 and (tmp_path / "log.retry1").is_dir()
    failing = launch_cpu_ranks([str(program), "3"], cwd=tmp_path, log_dir=tmp_path / "log2", timeout=120)
    assert failing.returncode != 0 and not (tmp_path / "log2.retry1").exists()
