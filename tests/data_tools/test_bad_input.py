"""Every kind of bad input gives a one-line `error: ...` naming the file or flag, or a counted skip; never a hang."""

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_tools import create_pretraining_data, trans_to_json
from ernie1.common.errors import ToolkitError, run_cli
from ernie1.data.indexed_dataset import MMapIndexedDataset
from tests import support

REPO = Path(__file__).resolve().parents[2]


def _cpd_args(vocab, input_path, prefix, *flags):
    return ["--model_name", str(vocab), "--tokenizer_name", "ErnieTokenizer", "--input_path", str(input_path),
            "--output_prefix", str(prefix), "--split_sentences", "--chinese", *flags]  # fmt: skip


def _cpd_error(*args):
    with pytest.raises(ToolkitError) as error:
        create_pretraining_data.main(_cpd_args(*args))
    return str(error.value)


def _t2j_error(*argv):
    with pytest.raises(ToolkitError) as error:
        trans_to_json.main(list(argv))
    return str(error.value)


# ---- trans_to_json


def test_t2j_empty_input_dir(tmp_path):
    (tmp_path / "in").mkdir()
    message = _t2j_error("--input_path", str(tmp_path / "in"), "--output_path", str(tmp_path / "o.jsonl"))
    assert message == f"--input_path {tmp_path / 'in'}: directory contains no files"


def test_t2j_missing_input(tmp_path):
    message = _t2j_error("--input_path", str(tmp_path / "nope"), "--output_path", str(tmp_path / "o.jsonl"))
    assert message == f"--input_path {tmp_path / 'nope'}: no such file or directory"


def test_t2j_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    message = _t2j_error("--input_path", str(tmp_path / "empty.txt"), "--output_path", str(tmp_path / "o.jsonl"))
    assert message == (
        f"--input_path {tmp_path / 'empty.txt'}: no document longer than --min_doc_length 10 chars "
        "(0 shorter, 0 undecodable lines skipped)"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_t2j_undecodable_lines_are_counted(tmp_path, capsys):
    source = tmp_path / "mixed.txt"
    source.write_bytes("第一个文档的第一句。\n".encode() + b"\xff\xfe broken\n" + "第一个文档的第二句。\n".encode())
    out = tmp_path / "o.jsonl"
    assert trans_to_json.main(["--input_path", str(source), "--output_path", str(out)]) == 0
    assert [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        "第一个文档的第一句。\n第一个文档的第二句。\n"
    ]
    assert "1 documents written" in capsys.readouterr().out
    # the summary counts the skipped line
    trans_to_json.main(["--input_path", str(source), "--output_path", str(out)])
    assert "1 undecodable lines skipped" in capsys.readouterr().out


def test_t2j_unreadable_file_is_counted(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("一个足够长的文档内容。\n", encoding="utf-8")
    (tmp_path / "in" / "b.txt").symlink_to(tmp_path / "missing.txt")  # listed by the walk, cannot be opened
    out = tmp_path / "o.jsonl"
    assert trans_to_json.main(["--input_path", str(tmp_path / "in"), "--output_path", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert capsys.readouterr().out.strip().endswith("0 undecodable lines skipped, 1 unreadable files skipped")


def test_t2j_output_not_writable(tmp_path):
    (tmp_path / "in.txt").write_text("一个足够长的文档内容。\n", encoding="utf-8")
    (tmp_path / "file").write_text("a regular file")
    message = _t2j_error("--input_path", str(tmp_path / "in.txt"), "--output_path", str(tmp_path / "file/sub/o.jsonl"))
    assert message.startswith(f"--output_path: cannot create {tmp_path / 'file/sub'} (")


# ---- create_pretraining_data


def test_cpd_empty_input_dir(tmp_path, vocab_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "raw.txt").write_text("not json lines")
    message = _cpd_error(vocab_path, tmp_path / "in", tmp_path / "out")
    assert message == f"--input_path {tmp_path / 'in'}: no *.jsonl files in this directory"


def test_cpd_empty_file_leaves_nothing_behind(tmp_path, vocab_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    message = _cpd_error(vocab_path, tmp_path / "empty.jsonl", tmp_path / "out" / "corpus", "--knowledge_spans")
    assert message == (
        f"--input_path {tmp_path / 'empty.jsonl'}: no usable document (need JSON lines with a non-empty string "
        "under --json_key text); 0 lines skipped"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_cpd_bad_lines_are_skipped_counted_and_located(tmp_path, vocab_path, capsys):
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": "第一个文档。"}, ensure_ascii=False).encode(),
        b'{"text": "unterminated',
        json.dumps({"content": "错误的键"}, ensure_ascii=False).encode(),
        b'{"text": "\xff\xfe"}',
        json.dumps({"text": 42}).encode(),
        json.dumps({"text": "第二个文档。"}, ensure_ascii=False).encode(),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert create_pretraining_data.main(_cpd_args(vocab_path, source, tmp_path / "out")) == 0
    assert MMapIndexedDataset(str(tmp_path / "out")).doc_idx.tolist() == [0, 1, 2]
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("create_pretraining_data: 2 docs, 2 sentences, ")
    assert summary.split("), ")[1].startswith(
        f"4 lines skipped (1 not UTF-8, 1 malformed JSON, 2 no string under --json_key; first at {source}:2 "
        "(malformed JSON)); wrote"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cpd_lone_surrogates_and_empty_documents_are_skipped_and_counted(tmp_path, vocab_path, capsys, workers):
    """Issue 8.7: a `\\ud800` escape aborted every worker with a traceback; empty documents vanished uncounted."""
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": "第一个文档。\n第二句。"}, ensure_ascii=False),
        '{"text": "坏\\ud800的"}',
        json.dumps({"text": "\u200b \u0007\t\n\u00a0"}),
        json.dumps({"text": ""}),
        json.dumps({"text": "第二个文档。"}, ensure_ascii=False),
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = _cpd_args(vocab_path, source, tmp_path / "out", "--workers", workers)
    assert run_cli(create_pretraining_data.main, args) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert MMapIndexedDataset(str(tmp_path / "out")).doc_idx.tolist() == [0, 2, 3]
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("create_pretraining_data: 2 docs, 3 sentences, ")
    assert summary.split("), ")[1].startswith(
        f"3 lines skipped (1 lone surrogate escape, 2 no text after cleaning; first at {source}:2 "
        "(lone surrogate escape)); wrote"
    )


def test_cpd_only_bad_lines_is_an_error(tmp_path, vocab_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"content": "x"}\nnot json\n', encoding="utf-8")
    message = _cpd_error(vocab_path, source, tmp_path / "out")
    assert message.endswith(
        f"2 lines skipped (1 malformed JSON, 1 no string under --json_key; first at {source}:1 "
        "(no string under --json_key))"
    )


def test_cpd_one_sentence_documents_are_kept(tmp_path, vocab_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": f"只有一句话的文档{i}。"}) + "\n" for i in range(3)))
    assert create_pretraining_data.main(_cpd_args(vocab_path, source, tmp_path / "out")) == 0
    ds = MMapIndexedDataset(str(tmp_path / "out"))
    assert ds.doc_idx.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "vocabulary file not found"),
        (b"\xff\xff\xff", "vocabulary file is not UTF-8 text"),
        # Issue 8.6: a duplicate line used to give ids >= the vocab size, a missing [UNK] an AssertionError.
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n文\n档\n文\n".encode(), "token '文' is on lines 6 and 8; "),
        ("[PAD]\n[CLS]\n[SEP]\n[MASK]\n文\n档\n".encode(), "missing special tokens [UNK]"),
    ],
)
def test_cpd_missing_or_unreadable_vocab(tmp_path, content, message):
    vocab = tmp_path / "vocab.txt"
    if content is not None:
        vocab.write_bytes(content)
    (tmp_path / "in.jsonl").write_text('{"text": "文档"}\n')
    assert _cpd_error(vocab, tmp_path / "in.jsonl", tmp_path / "out").startswith(f"--model_name {vocab}: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.jsonl", *(["vocab.txt"] if content else [])])


def test_cpd_output_dir_not_writable(tmp_path, vocab_path):
    # Root ignores permission bits, so make the directory impossible: a path below a regular file.
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "in.jsonl").write_text('{"text": "文档"}\n')
    message = _cpd_error(vocab_path, tmp_path / "in.jsonl", tmp_path / "file" / "sub" / "corpus")
    assert message.startswith(f"--output_prefix {tmp_path / 'file/sub/corpus'}: cannot create {tmp_path / 'file/sub'}")


def test_cpd_flag_mistakes(tmp_path, vocab_path):
    (tmp_path / "in.jsonl").write_text('{"text": "文档"}\n')
    args = (vocab_path, tmp_path / "in.jsonl", tmp_path / "out")
    assert "--cn_seg_func 'lac' is not supported" in _cpd_error(
        *args, "--cn_whole_word_segment", "--cn_seg_func", "lac"
    )
    with pytest.raises(ToolkitError, match="^--split_sentences needs --chinese"):
        create_pretraining_data.main(_cpd_args(*args)[:-1])  # drops --chinese
    assert _cpd_error(*args, "--workers", "0") == "--workers 0: must be at least 1"
    assert (
        _cpd_error(*args, "--entity_dict", "e.txt")
        == "--entity_dict is only used with --knowledge_spans; add that flag"
    )
    message = _cpd_error(*args, "--knowledge_spans", "--entity_dict", str(tmp_path / "e.txt"))
    assert message == f"--entity_dict {tmp_path / 'e.txt'}: file not found"
    assert list(tmp_path.iterdir()) == [tmp_path / "in.jsonl"]  # nothing written before the checks


def test_run_cli_prints_one_line(tmp_path, vocab_path, capsys):
    (tmp_path / "in.jsonl").write_bytes(b"")
    code = run_cli(create_pretraining_data.main, _cpd_args(vocab_path, tmp_path / "in.jsonl", tmp_path / "out"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --input_path ") and err.count("\n") == 1


# ---- as scripts: exit code 2 and a single stderr line


@pytest.mark.parametrize(
    "script, argv, expected",
    [
        ("data_tools/create_pretraining_data.py",
         ["--model_name", "{tmp}/missing/vocab.txt", "--tokenizer_name", "ErnieTokenizer", "--input_path",
          "{tmp}/in.jsonl", "--output_prefix", "{tmp}/out"],
         "error: --model_name {tmp}/missing/vocab.txt: vocabulary file not found"),
        ("data_tools/trans_to_json.py", ["--input_path", "{tmp}/emptydir", "--output_path", "{tmp}/o.jsonl"],
         "error: --input_path {tmp}/emptydir: directory contains no files"),
    ],
)  # fmt: skip
def test_scripts_exit_2_with_one_stderr_line(tmp_path, script, argv, expected):
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "in.jsonl").write_text('{"text": "文档"}\n')
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    result = subprocess.run([sys.executable, script, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == expected.format(tmp=tmp_path) + "\n"


# ---- a full disk (issue 8.10): one line, no output and no scratch file left behind


def _news_jsonl(path, count=40):
    documents = support.news_documents(count, split="test")
    path.write_text("".join(json.dumps({"text": "\n".join(d)}, ensure_ascii=False) + "\n" for d in documents))
    return path


def _bytes_written(run, directory):
    disk = support.FullDisk(directory, budget=1 << 40)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", disk.open)
        assert run() == 0
    shutil.rmtree(directory)
    directory.mkdir()
    return disk.written


@pytest.mark.parametrize("fraction", [0.1, 0.999], ids=["while_streaming", "while_finalizing"])
def test_cpd_disk_full_is_one_line_and_leaves_nothing(tmp_path, vocab_path, capsys, fraction):
    source = _news_jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    args = _cpd_args(vocab_path, source, out / "corpus")
    total = _bytes_written(lambda: create_pretraining_data.main(args), out)
    capsys.readouterr()
    disk = support.FullDisk(out, budget=int(total * fraction))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", disk.open)
        code = run_cli(create_pretraining_data.main, args)
    assert disk.full and code == 2
    assert (
        capsys.readouterr().err == f"error: --output_prefix {out / 'corpus'}: cannot write (No space left on device)\n"
    )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fraction", [0.3, 0.999])
def test_t2j_disk_full_is_one_line_and_leaves_nothing(tmp_path, capsys, fraction):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a.txt", "b.txt"):
        (raw / name).write_text("\n\n".join("\n".join(d) for d in support.news_documents(20)), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    args = ["--input_path", str(raw), "--output_path", str(out / "corpus.jsonl")]
    total = _bytes_written(lambda: trans_to_json.main(args), out)
    capsys.readouterr()
    disk = support.FullDisk(out, budget=int(total * fraction))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", disk.open)
        code = run_cli(trans_to_json.main, args)
    assert disk.full and code == 2
    err = capsys.readouterr().err  # progress lines, then the error
    assert "Traceback" not in err
    assert (
        err.splitlines()[-1] == f"error: --output_path {out / 'corpus.jsonl'}: cannot write (No space left on device)"
    )
    assert list(out.iterdir()) == []


def test_t2j_refuses_to_overwrite_its_input(tmp_path):
    """Issue 8.11: output = input silently replaced the input."""
    source = tmp_path / "corpus.jsonl"
    source.write_text("一个足够长的文档内容。\n", encoding="utf-8")
    before = source.read_bytes()
    message = _t2j_error("--input_path", str(source), "--output_path", str(source))
    assert message == (
        f"--output_path {source}: would overwrite the input file {source}; choose an output path outside the input"
    )
    # Without the .jsonl suffix the output name gets one, and a directory input is checked file by file.
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("一个足够长的文档内容。\n", encoding="utf-8")
    assert trans_to_json.main(["--input_path", str(raw), "--output_path", str(raw / "merged")]) == 0
    message = _t2j_error("--input_path", str(raw), "--output_path", str(raw / "merged"))
    assert message.startswith(f"--output_path {raw / 'merged.jsonl'}: would overwrite the input file ")
    (raw / "a.txt.jsonl").write_text("x\n", encoding="utf-8")
    message = _t2j_error("--input_path", str(raw), "--output_path", str(raw), "--no-merge")
    assert message == (
        f"--output_path {raw}: would overwrite the input file {raw / 'a.txt.jsonl'}; choose an output path outside "
        "the input"
    )
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "raw"]


# ---- Ctrl-C (issue 8.11): one line, exit 130, no worker traceback, no temporary left

# Runs a CLI whose workers announce their first task in MARKER and then stall, so the test can interrupt mid-run.
_STALLING_CLI = """
import pathlib, sys, time
from ernie1.common.errors import run_cli
module, target, marker = sys.argv[1:4]
library = __import__(target.rsplit(".", 1)[0], fromlist=["x"])
original = getattr(library, target.rsplit(".", 1)[1])

def stalled(*args, **kwargs):
    pathlib.Path(marker).touch()
    time.sleep(120)
    return original(*args, **kwargs)

setattr(library, target.rsplit(".", 1)[1], stalled)
cli = __import__("data_tools." + module, fromlist=["main"])
sys.exit(run_cli(cli.main, sys.argv[4:]))
"""


def _interrupt_mid_run(module, target, marker, argv):
    command = [sys.executable, "-c", _STALLING_CLI, module, target, str(marker), *argv]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, out, err


def test_cpd_ctrl_c_is_one_line_and_cleans_up(tmp_path, vocab_path):
    source = _news_jsonl(tmp_path / "in.jsonl", count=20)
    out = tmp_path / "out"
    argv = _cpd_args(vocab_path, source, out / "corpus", "--workers", "2")
    code, _, err = _interrupt_mid_run("create_pretraining_data", "ernie1.data.preprocess.encode_batch",
                                      tmp_path / "started", argv)  # fmt: skip
    assert (code, err) == (130, "interrupted\n")
    assert list(out.iterdir()) == []


def test_t2j_ctrl_c_is_one_line_and_cleans_up(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (raw / name).write_text("一个足够长的文档内容。\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--input_path", str(raw), "--output_path", str(out / "corpus.jsonl"), "--workers", "2"]
    code, _, err = _interrupt_mid_run("trans_to_json", "ernie1.text.raw_corpus.convert_file", tmp_path / "started",
                                      argv)  # fmt: skip
    assert (code, err) == (130, "interrupted\n")
    assert list(out.iterdir()) == []


# ---- one huge line (issue 8.11): skipped and counted, memory stays flat

# Peak RSS of this process image: VmHWM, not ru_maxrss, which Linux carries over from the (large) pytest parent
# across fork and exec.
_PEAK_RSS_CLI = """
import re, sys
from data_tools import create_pretraining_data
from ernie1.common.errors import run_cli
code = run_cli(create_pretraining_data.main, sys.argv[1:])
status = open("/proc/self/status").read()
print(code, int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
"""


def _peak_rss_mb(vocab_path, source, prefix, *flags):
    command = [sys.executable, "-c", _PEAK_RSS_CLI, *_cpd_args(vocab_path, source, prefix, *flags)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    *output, last = result.stdout.strip().splitlines()
    code, peak = map(int, last.split())
    assert code == 0, result.stderr
    return peak, output[-1]


@pytest.mark.slow
def test_cpd_one_huge_line_is_skipped_with_flat_memory(tmp_path, vocab_path):
    normal = "".join(json.dumps({"text": "\n".join(d)}, ensure_ascii=False) + "\n" for d in support.news_documents(60))
    text = "".join("".join(d) for d in support.news_documents(400, split="train"))
    huge = json.dumps({"text": (text * 40)[:4_000_000]}, ensure_ascii=False)  # one 12 MB line, one sentence
    base, with_huge = tmp_path / "base.jsonl", tmp_path / "huge.jsonl"
    base.write_text(normal, encoding="utf-8")
    with_huge.write_text(normal + huge + "\n" + normal, encoding="utf-8")
    base_peak, _ = _peak_rss_mb(vocab_path, base, tmp_path / "base")
    capped_peak, summary = _peak_rss_mb(vocab_path, with_huge, tmp_path / "capped")
    assert summary.split("), ")[1].startswith(
        f"1 lines skipped (1 longer than --max_line_bytes; first at {with_huge}:61 (longer than --max_line_bytes))"
    )
    assert capped_peak - base_peak < 50  # MB: the line is never held in memory
    # Without the cap the same line costs hundreds of MB (and grows with the line: 4.5 GB for 50 MB).
    uncapped_peak, _ = _peak_rss_mb(vocab_path, with_huge, tmp_path / "uncapped", "--max_line_bytes", "100000000")
    assert uncapped_peak - base_peak > 150
    capped, uncapped = MMapIndexedDataset(str(tmp_path / "capped")), MMapIndexedDataset(str(tmp_path / "uncapped"))
    assert len(capped.doc_idx) == 121 and len(uncapped.doc_idx) == 122
