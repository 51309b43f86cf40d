"""A tiny stand-in for data_tools' dataset/collate (used only while those modules are missing)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.indexed_dataset import MMapIndexedDataset


@dataclass(frozen=True)
class StandInDatasetConfig:
    input_dir: str
    split: str = "949,50,1"
    max_seq_length: int = 128
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    max_ngrams: int = 3
    favor_longer_ngram: bool = False
    binary_head: bool = True
    seed: int = 1234
    share_folder: bool = False


class StandInDataset:
    def __init__(self, prefix, docs, num_samples, max_seq_length, seed, cls_id=101, sep_id=102, mask_id=103):
        self.ds = MMapIndexedDataset(prefix)
        self.docs = docs
        self.n = num_samples
        self.L = max_seq_length
        self.seed = seed
        self.cls, self.sep, self.mask = cls_id, sep_id, mask_id

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        rng = np.random.RandomState((self.seed + idx) % 2**32)
        doc = self.docs[idx % len(self.docs)]
        lo, hi = self.ds.doc_idx[doc], self.ds.doc_idx[doc + 1]
        a = [int(t) for t in self.ds[lo]][: (self.L - 3) // 2]
        b = [int(t) for t in self.ds[lo + 1]][: (self.L - 3) // 2] if hi - lo > 1 else [self.sep]
        label = 0
        if rng.random_sample() < 0.5:
            a, b, label = b, a, 1
        ids = [self.cls] + a + [self.sep] + b + [self.sep]
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        cand = [i for i in range(len(ids)) if ids[i] not in (self.cls, self.sep)]
        k = max(1, int(round(len(ids) * 0.15)))
        pos = np.sort(rng.choice(cand, size=min(k, len(cand)), replace=False))
        labels = np.array([ids[p] for p in pos], dtype=np.int64)
        ids = np.array(ids, dtype=np.int64)
        ids[pos] = self.mask
        return {
            "input_ids": ids,
            "token_type_ids": np.array(types, dtype=np.int64),
            "masked_positions": pos.astype(np.int64),
            "masked_labels": labels,
            "sop_label": np.array(label, dtype=np.int64),
            "masking_level": "word",
        }


def build_train_valid_test_datasets(config, tokenizer, num_samples=(0, 0, 0), data_rank=0, local_rank=0, global_rank=0):
    from data_tools.dataset_utils import discover_prefixes

    prefix = discover_prefixes(config.input_dir)[0][1]
    ds = MMapIndexedDataset(prefix)
    ndocs = len(ds.doc_idx) - 1
    split = [0, int(ndocs * 0.8), int(ndocs * 0.9), ndocs]
    out = []
    for i in range(3):
        docs = list(range(split[i], split[i + 1]))
        out.append(StandInDataset(prefix, docs, max(num_samples[i], 1), config.max_seq_length, config.seed + i))
    return tuple(out)


def collate_pretraining_batch(samples, pad_to=None, pad_id=0):
    S = pad_to or max(len(s["input_ids"]) for s in samples)
    B = len(samples)
    ids = np.full((B, S), pad_id, dtype=np.int64)
    types = np.zeros((B, S), dtype=np.int64)
    mask = np.full((B, 1, 1, S), -1e4, dtype=np.float32)
    positions, labels = [], []
    for i, s in enumerate(samples):
        n = len(s["input_ids"])
        ids[i, :n] = s["input_ids"]
        types[i, :n] = s["token_type_ids"]
        mask[i, 0, 0, :n] = 0
        positions.extend(i * S + s["masked_positions"])
        labels.extend(s["masked_labels"])
    m = (len(positions) + 7) // 8 * 8
    pos = np.zeros(m, dtype=np.int32)
    lab = np.full((m, 1), -1, dtype=np.int64)
    pos[: len(positions)] = positions
    lab[: len(labels), 0] = labels
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "masked_positions": pos,
        "masked_lm_labels": lab,
        "next_sentence_labels": np.array([[int(s["sop_label"])] for s in samples], dtype=np.int64),
    }
