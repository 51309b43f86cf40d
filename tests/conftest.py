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
