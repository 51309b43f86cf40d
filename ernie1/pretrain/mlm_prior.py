"""The MLM decoder bias of a fresh model, set to the centred log unigram prior of the train split (issue 9).

Why: paddlenlp starts `cls.predictions.decoder_bias` at zero, so the first logits are uniform over the vocabulary
and the cheapest way down the loss is to learn token frequencies. With the decoder tied to the word embeddings, a
small model spends its early budget (all of it, on the CPU demo) pushing every final state towards the frequent
tokens' embeddings: masked accuracy sits at the unigram baseline and the token states collapse (cosine ~0.98). A
bias that already holds log p(token) takes frequency out of what the encoder must learn; the prior is centred (mean
0 over the vocabulary) since softmax ignores a shift and a zero-mean bias keeps the logits small.

The counts come from the train split's token stream (`_ids.npy`, memory-mapped; a bounded, evenly spread sample of it
on a large corpus), with `##` marks restored to their plain characters as the masking does to its labels. Datasets
without that layout (test doubles) fall back to the masked labels of their first samples.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Optional

import numpy as np

logger = logging.getLogger("ernie1")

MLM_BIAS_KEY = "cls.predictions.decoder_bias"
# Add-alpha smoothing of the counts, as the unigram baseline (ernie1.pretrain.quality): an unseen token gets a finite
# logit instead of -inf.
PRIOR_SMOOTHING = 0.5
# At most this many train tokens are counted, in PRIOR_BLOCKS evenly spread blocks (bincount of 16M ids: ~0.1 s).
MAX_PRIOR_TOKENS = 16_000_000
PRIOR_BLOCKS = 256
# Samples read by the fallback for datasets without a token stream.
FALLBACK_SAMPLES = 2000


def centred_log_prior(counts: np.ndarray, smoothing: float = PRIOR_SMOOTHING) -> np.ndarray:
    """float32 log((count + smoothing) / total), minus its mean over the vocabulary."""
    log_prior = np.log(np.asarray(counts, dtype=np.float64) + smoothing)
    log_prior -= np.log(log_prior.size * smoothing + float(np.sum(counts)))
    return (log_prior - log_prior.mean()).astype(np.float32)


def _spread_blocks(begin: int, end: int, max_tokens: int, blocks: int) -> Iterable[slice]:
    """[begin, end) whole, or `blocks` equal slices spread evenly over it, `max_tokens` in all."""
    if end - begin <= max_tokens:
        return [slice(begin, end)]
    size = max_tokens // blocks
    starts = np.linspace(begin, end - size, blocks).astype(np.int64)
    return [slice(int(start), int(start) + size) for start in starts]


def _ernie_datasets(dataset: Any) -> Optional[list]:
    """The ErnieDatasets a train split reads (one, or those a blend interleaves); None for another layout."""
    parts = list(getattr(dataset, "datasets", [dataset]))
    if all(hasattr(part, name) for part in parts for name in ("indexed", "samples_mapping", "vocab")):
        return parts
    return None


def _stream_counts(part: Any, vocab_size: int, max_tokens: int) -> np.ndarray:
    """Token counts of the sentences one ErnieDataset's samples cover (the split's document range)."""
    mapping = np.asarray(part.samples_mapping)
    counts = np.zeros(vocab_size, dtype=np.int64)
    if len(mapping) == 0:
        return counts
    pointers = part.indexed.pointers
    begin, end = int(pointers[int(mapping[:, 0].min())]), int(pointers[int(mapping[:, 1].max())])
    ids = part.indexed.ids
    for block in _spread_blocks(begin, end, max_tokens, PRIOR_BLOCKS):
        labels = part.vocab.restore(np.asarray(ids[block]))
        counts += np.bincount(labels[labels < vocab_size], minlength=vocab_size)[:vocab_size]
    return counts


def _label_counts(dataset: Any, vocab_size: int, samples: int) -> np.ndarray:
    from ernie1.pretrain.data import checked_sample

    counts = np.zeros(vocab_size, dtype=np.int64)
    for index in range(min(samples, len(dataset))):
        # A broken sample is the loaders' one-line data error here too, not a traceback before the loop.
        labels = np.asarray(checked_sample(dataset, index)["masked_labels"], dtype=np.int64).reshape(-1)
        counts += np.bincount(labels[(labels >= 0) & (labels < vocab_size)], minlength=vocab_size)
    return counts


def train_token_counts(train: Any, vocab_size: int, max_tokens: int = MAX_PRIOR_TOKENS) -> np.ndarray:
    """int64 [vocab_size] counts of the train split's tokens (the targets the MLM predicts)."""
    parts = _ernie_datasets(train)
    if parts is None:
        return _label_counts(train, vocab_size, FALLBACK_SAMPLES)
    share = max(1, max_tokens // len(parts))
    return sum((_stream_counts(part, vocab_size, share) for part in parts), np.zeros(vocab_size, dtype=np.int64))


def mlm_bias_prior(model_config: Any, train: Any, vocab_size: int, fresh: bool) -> Optional[np.ndarray]:
    """The decoder bias to start a run with, or None to keep the model's own: `--mlm_bias_init zeros`, a loaded or
    resumed checkpoint (`fresh` False: its trained bias is never touched) or no train split."""
    if model_config.mlm_bias_init != "unigram" or not fresh or train is None or len(train) == 0:
        return None
    counts = train_token_counts(train, vocab_size)
    if counts.sum() == 0:
        return None
    prior = centred_log_prior(counts)
    logger.info(
        f"mlm decoder bias: centred log unigram prior of {int(counts.sum())} train tokens "
        f"(range {prior.min():.2f} .. {prior.max():.2f}; --mlm_bias_init zeros starts it at 0)"
    )
    return prior


def set_mlm_bias(model: Any, prior: np.ndarray) -> None:
    """Write `prior` into a dygraph model's MLM decoder bias (in the parameter's own dtype)."""
    import paddle

    bias = getattr(model, "_layers", model).cls.predictions.decoder_bias
    if list(bias.shape) != [len(prior)]:
        raise ValueError(f"prior of {len(prior)} tokens for a decoder bias of shape {list(bias.shape)}")
    with paddle.no_grad():
        bias.set_value(paddle.to_tensor(prior).astype(bias.dtype))
