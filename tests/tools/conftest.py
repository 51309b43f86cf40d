"""The trained probe checkpoint, shared by the probe and fill-mask CLI tests (trained once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import probe_support


@dataclass(frozen=True)
class TrainedCheckpoints:
    """The same trained weights in each layout, the probe's CoNLL file and the final training loss."""

    dygraph: Path
    paddlenlp: Path
    static: Path
    converted: Path
    conll: Path
    final_loss: float


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> TrainedCheckpoints:
    from paddlenlp.transformers import ErnieTokenizer

    from converter.params_static_to_dygraph import main as convert

    root = tmp_path_factory.mktemp("trained_probe")
    vocab = probe_support.write_vocab(root / "vocab")
    tokenizer = ErnieTokenizer(str(vocab))
    model, final_loss = probe_support.train_on_probe_sentences(vocab)
    static = probe_support.save_static(model, tokenizer, root / "static" / "model_last")
    assert convert(["--path", str(static), "--output_path", str(root / "converted")]) == 0
    return TrainedCheckpoints(
        dygraph=probe_support.save_dygraph(model, tokenizer, root / "dygraph" / "model_last"),
        paddlenlp=probe_support.save_paddlenlp(model, tokenizer, root / "trainer" / "checkpoint-100"),
        static=static,
        converted=root / "converted",
        conll=probe_support.write_conll(root / "probe.txt"),
        final_loss=final_loss,
    )
