import io

from ernie1.text import raw_corpus
from ernie1.text.raw_corpus import ConvertOptions, FileStats, iter_documents, shuffle_lines


def test_documents_end_at_the_spliter_and_bad_lines_are_counted():
    stream = io.BytesIO("一句\r\n二句\n\n三句\n".encode() + b"\xff\n" + "   \n四句".encode())
    stats = FileStats()
    documents = list(iter_documents(stream, ConvertOptions(), stats))
    assert documents == ["一句\n二句\n", "三句\n", "四句\n"]
    assert (stats.undecodable_lines, stats.bytes_read) == (1, len(stream.getvalue()))


def test_bucketed_shuffle_with_small_buckets(tmp_path, monkeypatch):
    monkeypatch.setattr(raw_corpus, "SHUFFLE_BUCKET_BYTES", 64)
    source = tmp_path / "lines"
    source.write_bytes(b"".join(b"line %03d\n" % i for i in range(200)))
    shuffle_lines(source, tmp_path / "a", seed=7)
    shuffle_lines(source, tmp_path / "b", seed=7)
    shuffle_lines(source, tmp_path / "c", seed=8)
    lines = (tmp_path / "a").read_bytes().splitlines()
    assert sorted(lines) == source.read_bytes().splitlines()
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() != (tmp_path / "c").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "lines"]  # buckets removed
