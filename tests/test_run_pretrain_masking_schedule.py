"""run_pretrain.py with --masking_schedule: levels switch at the stated steps and a resumed run continues exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import run_pretrain
from ernie1.common.errors import run_cli
from ernie1.data.dataset import ErnieDataset
from ernie1.data.indexed_dataset import MMapIndexedDataset
from ernie1.data.knowledge_spans import KnowledgeSpansWriter
from ernie1.data.masking import MaskingVocab
from ernie1.pretrain import loop
from ernie1.pretrain.metrics_logger import read_metrics
from tests import support
from tests.ernie1.pretrain.helpers import tiny_argv

SCHEDULE = "char:0-0.25,word:0.25-0.5,entity:0.5-1"
# 8 steps of 4 samples: steps 1-2 char, 3-4 word, 5-8 entity (train samples 0-7, 8-15, 16-31).
EXPECTED = ["char"] * 2 + ["word"] * 2 + ["entity"] * 4


@pytest.fixture
def corpus_dir(tiny_prefix, vocab_path, tmp_path):
    """The tiny corpus with entity and phrase spans (pairs of words) in a `_knowledge.npz`."""
    directory = tmp_path / "corpus"
    directory.mkdir()
    for suffix in ("_ids.npy", "_idx.npz"):
        shutil.copy(tiny_prefix + suffix, directory / ("tiny" + suffix))
    indexed = MMapIndexedDataset(str(directory / "tiny"))
    knowledge = support.synthetic_knowledge(indexed, MaskingVocab.from_vocab_file(str(vocab_path)), every=4)
    writer = KnowledgeSpansWriter(str(directory / "tiny"))
    for sentence in range(len(indexed)):
        writer.add_sentence(*knowledge.spans_of_sentence(sentence))
    writer.finalize()
    return str(directory)


@pytest.fixture
def read_levels(monkeypatch):
    """(split, sample index, masking level) of every sample the run builds, in order."""
    records = []
    build = ErnieDataset.build

    def recording_build(self, idx, schedule_index=None):
        sample, details = build(self, idx, schedule_index)
        records.append((self.name, int(idx), sample["masking_level"]))
        return sample, details

    monkeypatch.setattr(ErnieDataset, "build", recording_build)
    baseline = loop.dataset_unigram_baseline

    def baseline_then_forget(*args, **kwargs):
        # The unigram baseline reads samples before training; only the training run's reads are recorded.
        result = baseline(*args, **kwargs)
        records.clear()
        return result

    monkeypatch.setattr(loop, "dataset_unigram_baseline", baseline_then_forget)
    return records


def losses(output_dir, split="train"):
    return [(record["step"], record["loss"]) for record in read_metrics(output_dir, split)]


def train_levels(records, max_index):
    return {index: level for split, index, level in records if split == "train" and index < max_index}


def test_schedule_switches_at_the_stated_steps_and_resumes_exactly(tmp_path, corpus_dir, vocab_path, read_levels):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = dict(max_steps=8, eval_freq=4, save_steps=4, checkpoint_steps=1000, masking_schedule=SCHEDULE)
    assert run_pretrain.main(tiny_argv(corpus_dir, str(straight), str(vocab_path), **common)) == 0
    straight_levels = train_levels(read_levels, 32)
    assert sorted(straight_levels) == list(range(32))
    assert [straight_levels[index] for index in range(0, 32, 4)] == EXPECTED
    assert all(straight_levels[index] == EXPECTED[index // 4] for index in range(32))
    assert {level for split, _, level in read_levels if split != "train"} == {"entity"}  # valid and test
    # A run stopped after step 4 left exactly this checkpoint behind as model_last.
    read_levels.clear()
    resumed.mkdir()
    shutil.copytree(straight / "model_4", resumed / "model_last")
    assert run_pretrain.main(tiny_argv(corpus_dir, str(resumed), str(vocab_path), **common)) == 0
    resumed_levels = train_levels(read_levels, 32)
    assert sorted(resumed_levels) == list(range(16, 32))  # steps 5-8 only, each sample once
    assert resumed_levels == {index: straight_levels[index] for index in range(16, 32)}
    assert losses(resumed) == losses(straight)[4:]
    assert losses(resumed, "valid") == [record for record in losses(straight, "valid") if record[0] > 4]


def test_schedule_and_a_level_mix_are_refused_together(tmp_path, corpus_dir, vocab_path, capsys):
    argv = tiny_argv(corpus_dir, str(tmp_path / "out"), str(vocab_path), masking_schedule=SCHEDULE)
    assert run_cli(run_pretrain.main, argv + ["--masking_level", "word:0.5,entity:0.5"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: --masking_schedule and --masking_level word:0.5,entity:0.5 both choose the masking levels; pass only "
        "one (a schedule of stages, or a level or per-sample mix)"
    )
    assert not Path(tmp_path / "out").exists()
