import logging

import pytest

from tests import support


@pytest.fixture(scope="session")
def vocab_path():
    return support.vocab_file()


@pytest.fixture(scope="session")
def tiny_prefix(tmp_path_factory):
    """A 40-document real-text corpus in the standard format (session-wide, read-only)."""
    return support.write_tiny_prefix(tmp_path_factory.mktemp("tiny_corpus"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip where Paddle has no CUDA device (they run under pytest -m gpu on a GPU machine)."""
    import paddle

    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_toolkit_logger():
    """An entry point run in process (`run_pretrain.main(...)`) gives the "ernie1" logger its console handler and
    stops propagation, as a CLI should; restore it so later tests' caplog sees the library's records again."""
    toolkit = logging.getLogger("ernie1")
    saved = (list(toolkit.handlers), toolkit.level, toolkit.propagate)
    yield
    toolkit.handlers[:], toolkit.level, toolkit.propagate = saved[0], saved[1], saved[2]
