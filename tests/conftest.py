import pytest

from tests import support


@pytest.fixture(scope="session")
def vocab_path():
    return support.vocab_file()


@pytest.fixture(scope="session")
def tiny_prefix(tmp_path_factory):
    """A 40-document real-text corpus in the standard format (session-wide, read-only)."""
    return support.write_tiny_prefix(tmp_path_factory.mktemp("tiny_corpus"))
