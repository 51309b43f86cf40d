"""Knowledge-probe fixtures: 20 short sentences with gold entities, a vocab of their characters, a tiny ERNIE trained
on their entity cloze, and that model saved in every checkpoint layout the toolkit writes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

# (sentence, [(start, end, type)]) with character offsets. 火箭队 cannot be scored: 箭 is left out of the vocab.
PROBE_SENTENCES: List[Tuple[str, List[Tuple[int, int, str]]]] = [
    ("哈尔滨是黑龙江的省会", [(0, 3, "LOC"), (4, 7, "LOC")]),
    ("北京是中国的首都", [(0, 2, "LOC"), (3, 5, "LOC")]),
    ("鲁迅写了狂人日记", [(0, 2, "PER")]),
    ("李白是唐朝的诗人", [(0, 2, "PER")]),
    ("长江流经武汉和南京", [(0, 2, "LOC"), (4, 6, "LOC"), (7, 9, "LOC")]),
    ("杭州有美丽的西湖", [(0, 2, "LOC"), (6, 8, "LOC")]),
    ("清华大学在海淀区", [(0, 4, "ORG"), (5, 8, "LOC")]),
    ("广州是广东的省会", [(0, 2, "LOC"), (3, 5, "LOC")]),
    ("姚明曾在火箭队打球", [(0, 2, "PER"), (4, 7, "ORG")]),
    ("孔子是儒家的创始人", [(0, 2, "PER")]),
    ("上海位于长江入海口", [(0, 2, "LOC"), (4, 6, "LOC")]),
    ("成都是四川的省会", [(0, 2, "LOC"), (3, 5, "LOC")]),
    ("新华社发布了消息", [(0, 3, "ORG")]),
    ("杜甫被称为诗圣", [(0, 2, "PER")]),
    ("西安古称长安", [(0, 2, "LOC"), (4, 6, "LOC")]),
    ("拉萨是西藏的首府", [(0, 2, "LOC"), (3, 5, "LOC")]),
    ("毛泽东出生在湖南韶山", [(0, 3, "PER"), (6, 8, "LOC"), (8, 10, "LOC")]),
    ("联合国总部设在纽约", [(0, 3, "ORG"), (7, 9, "LOC")]),
    ("南京大学创办于南京", [(0, 4, "ORG"), (7, 9, "LOC")]),
    ("苏轼是宋代的文学家", [(0, 2, "PER")]),
]
NUM_ENTITIES = sum(len(spans) for _text, spans in PROBE_SENTENCES)  # 36
NUM_UNSCORABLE = 1  # 火箭队
OUT_OF_VOCAB = "箭"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tags_of(text: str, spans: Sequence[Tuple[int, int, str]]) -> List[str]:
    tags = ["O"] * len(text)
    for start, end, kind in spans:
        tags[start] = f"B-{kind}"
        tags[start + 1 : end] = [f"I-{kind}"] * (end - start - 1)
    return tags


def write_conll(path: Path, sentences=PROBE_SENTENCES) -> Path:
    """One `char tag` line per character, a blank line between sentences (run_ner.py's format)."""
    blocks = ["\n".join(f"{c} {t}" for c, t in zip(text, tags_of(text, spans))) for text, spans in sentences]
    Path(path).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return Path(path)


def write_vocab(directory: Path) -> Path:
    """vocab.txt: the special tokens, then every character of the sentences but OUT_OF_VOCAB."""
    chars = sorted({c for text, _ in PROBE_SENTENCES for c in text} - {OUT_OF_VOCAB})
    path = Path(directory) / "vocab.txt"
    Path(directory).mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(SPECIALS + chars) + "\n", encoding="utf-8")
    return path


def ernie_config(vocab_size: int):
    """The fine-tuning tests' tiny ERNIE (2 x 64, 128 positions, no dropout) with ERNIE 1.0's relu, over `vocab_size`."""
    from paddlenlp.transformers import ErnieConfig

    from tests.finetune.tiny_checkpoint import TINY_ERNIE

    return ErnieConfig(**{**TINY_ERNIE, "vocab_size": vocab_size, "hidden_act": "relu"})


def cloze_batch(vocab: Dict[str, int]) -> Dict[str, np.ndarray]:
    """Every entity of every sentence masked whole, one row per entity, char ids looked up directly (independent of
    the probe's own query building), in the collated layout (`ernie1.data.collate`)."""
    rows, labels, positions = [], [], []
    for text, spans in PROBE_SENTENCES:
        ids = [vocab["[CLS]"]] + [vocab.get(c, vocab["[UNK]"]) for c in text] + [vocab["[SEP]"]]
        for start, end, _kind in spans:
            masked = list(ids)
            for p in range(start + 1, end + 1):
                masked[p] = vocab["[MASK]"]
                positions.append((len(rows), p))
                labels.append(ids[p])
            rows.append(masked)
    length = max(len(row) for row in rows)
    input_ids = np.zeros((len(rows), length), np.int64)
    attention_mask = np.zeros((len(rows), 1, 1, length), np.float32)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        attention_mask[i, ..., len(row) :] = -1e4
    return {
        "input_ids": input_ids,
        "token_type_ids": np.zeros_like(input_ids),
        "attention_mask": attention_mask,
        "masked_positions": np.array([i * length + p for i, p in positions], np.int64),
        "masked_lm_labels": np.array(labels, np.int64).reshape(-1, 1),
    }


def train_on_probe_sentences(vocab_path: Path, steps: int = 100, seed: int = 3):
    """A tiny ErnieForPretraining fitted to the entity cloze of the probe sentences (full batch, AdamW)."""
    import paddle

    from ernie1.pretrain.model import PretrainingCriterion, build_pretraining_model, forward_pretraining

    tokens = Path(vocab_path).read_text(encoding="utf-8").split("\n")
    vocab = {token: i for i, token in enumerate(tokens) if token}
    paddle.seed(seed)
    model = build_pretraining_model(ernie_config(len(vocab)), binary_head=True)
    criterion = PretrainingCriterion(binary_head=False)
    optimizer = paddle.optimizer.AdamW(learning_rate=3e-3, parameters=model.parameters())
    batch = {key: paddle.to_tensor(value) for key, value in cloze_batch(vocab).items()}
    model.train()
    for _ in range(steps):
        scores, _sop = forward_pretraining(model, batch)
        _total, lm_loss, _ = criterion(scores, None, batch["masked_lm_labels"])
        lm_loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    model.eval()
    return model, float(lm_loss)


def save_dygraph(model, tokenizer, directory: Path) -> Path:
    """As run_pretrain.py saves `model_last` (ernie1.pretrain.checkpoint.save_checkpoint)."""
    from ernie1.pretrain.checkpoint import save_checkpoint
    from ernie1.pretrain.model import model_config_dict

    meta = {"model_name": "ernie-1.0", "global_step": 100}
    return save_checkpoint(str(directory), {"model": model}, meta, tokenizer, model_config_dict(model.config))


def save_paddlenlp(model, tokenizer, directory: Path) -> Path:
    """As the Trainer saves `checkpoint-<N>`: paddlenlp save_pretrained (model_state.pdparams + config.json) plus the
    tokenizer files its callback writes."""
    from ernie1.text.tokenizer import save_tokenizer_files

    model.save_pretrained(str(directory))
    save_tokenizer_files(tokenizer, Path(directory))
    return Path(directory)


def save_static(model, tokenizer, directory: Path) -> Path:
    """As run_pretrain_static.py saves `model_last`: the same weights set into a real static program, then
    `save_static_checkpoint` (static_vars.* + static_name_map.json + model_config.json + tokenizer)."""
    import paddle

    from ernie1.pretrain.engines.static_program import build_inference_program, static_name_map
    from ernie1.pretrain.model import model_config_dict
    from ernie1.pretrain.static_checkpoint import save_static_checkpoint

    config = model.config
    weights = {key: value.numpy() for key, value in model.state_dict().items()}
    name_map = static_name_map(config, binary_head=True)
    paddle.enable_static()
    try:
        with paddle.static.scope_guard(paddle.static.Scope()):
            program, startup, _feeds, _outputs = build_inference_program(config, binary_head=True)
            paddle.static.Executor(paddle.CPUPlace()).run(startup)
            paddle.static.set_program_state(program, {name_map[key]: value for key, value in weights.items()})
            save_static_checkpoint(
                str(directory), program, name_map, {"global_step": 100}, tokenizer, model_config_dict(config)
            )
    finally:
        paddle.disable_static()
    return Path(directory)
