"""A tiny ERNIE pretraining checkpoint in the layout the pretraining scripts write, for fine-tuning tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

TINY_ERNIE = dict(
    vocab_size=21128,  # the cn_clip (bert-base-chinese) vocab
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=128,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def write_tiny_pretraining_checkpoint(
    directory: Path, vocab_path: Path, seed: int = 7, dropout: float = 0.0, mlm_texts: Sequence[str] = (), mlm_steps=0
) -> Path:
    """ErnieForPretraining(tiny config) + cn_clip vocab saved as model_state.pdparams, model_config.json, vocab.txt...

    Random weights, unless `mlm_steps` > 0: then first pretrained that many masked-LM steps on `mlm_texts`.
    """
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining, ErnieTokenizer

    directory = Path(directory)
    paddle.seed(seed)
    config = dict(TINY_ERNIE, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = ErnieForPretraining(ErnieConfig(**config))
    tokenizer = ErnieTokenizer(str(vocab_path))
    global_step = 0
    if mlm_steps > 0:
        losses = masked_lm_steps(model, tokenizer, mlm_texts, mlm_steps, seed)
        global_step = mlm_steps
        (directory).mkdir(parents=True, exist_ok=True)
        (directory / "mlm_losses.json").write_text(json.dumps(losses), encoding="utf-8")
    model.save_pretrained(str(directory))
    # The pretraining checkpoints name the config model_config.json (the original's name); paddlenlp reads both.
    (directory / "config.json").rename(directory / "model_config.json")
    tokenizer.save_pretrained(str(directory))
    (directory / "config.yml").write_text(f"model_name: ernie-1.0\nglobal_step: {global_step}\n", encoding="utf-8")
    return directory


def masked_lm_steps(
    model, tokenizer, texts: Sequence[str], steps: int, seed: int, batch_size: int = 16
) -> List[float]:
    """Train `model` (ErnieForPretraining) on 15% token masking of `texts` for `steps` AdamW steps; the losses."""
    import numpy as np
    import paddle
    import paddle.nn.functional as F

    rows = [tokenizer(text, max_length=64, truncation=True)["input_ids"] for text in texts]
    rng = np.random.RandomState(seed)
    optimizer = paddle.optimizer.AdamW(learning_rate=3e-3, parameters=model.parameters())
    model.train()
    losses = []
    for _ in range(steps):
        batch = [rows[i] for i in rng.choice(len(rows), batch_size)]
        width = max(len(row) for row in batch)
        ids = np.full((batch_size, width), tokenizer.pad_token_id, dtype="int64")
        for index, row in enumerate(batch):
            ids[index, : len(row)] = row
        inner = np.zeros_like(ids, dtype=bool)  # real tokens between [CLS] and [SEP]
        for index, row in enumerate(batch):
            inner[index, 1 : len(row) - 1] = True
        masked = inner & (rng.rand(*ids.shape) < 0.15)
        labels = ids[masked]
        ids[masked] = tokenizer.mask_token_id
        positions = np.flatnonzero(masked).astype("int64")  # ERNIE's masked_positions index the flattened batch
        scores, _ = model(paddle.to_tensor(ids), masked_positions=paddle.to_tensor(positions), return_dict=False)
        loss = F.cross_entropy(scores, paddle.to_tensor(labels))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return losses


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
