"""Typed configuration of the ERNIE pretraining dataset (sample construction + masking), validated at creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from ernie1.common.errors import FieldError

MASKING_LEVELS = ("char", "word", "phrase", "entity")
# Levels whose units come from the `<prefix>_knowledge.npz` span file.
KNOWLEDGE_LEVELS = ("phrase", "entity")


def parse_masking_mix(spec: str) -> Tuple[Tuple[str, float], ...]:
    """Parse `word` or `word:0.6,phrase:0.2,entity:0.2` into ((level, normalised weight), ...); ToolkitError if bad."""
    text = str(spec).strip()
    if not text:
        raise FieldError(
            "masking_level",
            f"{{masking_level}} is empty; use one of {', '.join(MASKING_LEVELS)} or a mix like word:0.8,phrase:0.2",
        )
    parts = [p.strip() for p in text.split(",") if p.strip()]
    levels: list[str] = []
    weights: list[float] = []
    for part in parts:
        if ":" in part:
            name, _, raw = part.partition(":")
            name = name.strip()
            try:
                weight = float(raw)
            except ValueError:
                raise FieldError(
                    "masking_level", f"{{masking_level}} {spec!r}: weight {raw.strip()!r} of {name!r} is not a number"
                ) from None
        else:
            name, weight = part, 1.0
        if name not in MASKING_LEVELS:
            raise FieldError(
                "masking_level",
                f"{{masking_level}} {spec!r}: unknown level {name!r}; use one of {', '.join(MASKING_LEVELS)}",
            )
        if name in levels:
            raise FieldError("masking_level", f"{{masking_level}} {spec!r}: level {name!r} is given twice")
        if not weight >= 0.0 or weight == float("inf"):
            raise FieldError(
                "masking_level", f"{{masking_level}} {spec!r}: weight of {name!r} must be a finite number >= 0"
            )
        levels.append(name)
        weights.append(weight)
    total = sum(weights)
    if total <= 0.0:
        raise FieldError(
            "masking_level", f"{{masking_level}} {spec!r}: the weights sum to 0; give at least one positive weight"
        )
    return tuple((name, w / total) for name, w in zip(levels, weights) if w > 0.0)


def parse_split(spec: str) -> Tuple[float, float, float]:
    """Parse `949,50,1` (or `a/b/c`, fewer parts padded with 0) into three fractions summing to 1; ToolkitError if bad."""
    text = str(spec).replace("/", ",")
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise FieldError("split", f"{{split}} {spec!r} is not a list of numbers like 949,50,1") from None
    if not values or len(values) > 3 or any(not v >= 0.0 for v in values) or sum(values) <= 0.0:
        raise FieldError(
            "split", f"{{split}} {spec!r} must be 1 to 3 non-negative numbers with a positive sum, like 949,50,1"
        )
    values += [0.0] * (3 - len(values))
    total = sum(values)
    return tuple(v / total for v in values)  # type: ignore[return-value]


@dataclass(frozen=True)
class ErnieDatasetConfig:
    """How pretraining samples are built from an indexed corpus and masked.

    input_dir: a directory of `*_idx.npz` files, a single prefix, or a weighted blend "w1 prefix1 w2 prefix2 ...".
    split: train/valid/test proportions of the documents, e.g. "949,50,1".
    max_seq_length: length of a sample including [CLS] and the [SEP] tokens (>= 8).
    masked_lm_prob: fraction of the sample's tokens chosen for prediction, in [0, 1).
    short_seq_prob: probability that a sample targets a random shorter length (2..max_seq_length), in [0, 1].
    max_ngrams: longest n-gram (in masking units) masked as one span (>= 1).
    favor_longer_ngram: if True, P(n) grows with n instead of P(n) proportional to 1/n.
    binary_head: if True, build A/B pairs with the sentence-order (SOP) label; else segment A only, label 0.
    masking_level: char | word | phrase | entity, or a weighted mix such as "word:0.6,phrase:0.2,entity:0.2".
    seed: base seed of the sample mapping and of the per-sample masking randomness.
    share_folder: whether ranks share one filesystem for the index-map cache (only local rank 0 builds it).
    cache_wait_timeout_s: how long other ranks wait for the index-map cache before failing with a clear error.
    """

    input_dir: str
    split: str = "949,50,1"
    max_seq_length: int = 512
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    max_ngrams: int = 3
    favor_longer_ngram: bool = False
    binary_head: bool = True
    masking_level: str = "word"
    seed: int = 1234
    share_folder: bool = False
    cache_wait_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        """Validate every field, raising ToolkitError naming the flag."""
        if not str(self.input_dir).strip():
            raise FieldError(
                "input_dir", "{input_dir} is empty; pass a directory of *_idx.npz files or a dataset prefix"
            )
        parse_split(self.split)
        if int(self.max_seq_length) < 8:
            raise FieldError("max_seq_len", f"{{max_seq_len}} must be >= 8, got {self.max_seq_length}")
        if not 0.0 <= float(self.masked_lm_prob) < 1.0:
            raise FieldError("masked_lm_prob", f"{{masked_lm_prob}} must be in [0, 1), got {self.masked_lm_prob}")
        if not 0.0 <= float(self.short_seq_prob) <= 1.0:
            raise FieldError("short_seq_prob", f"{{short_seq_prob}} must be in [0, 1], got {self.short_seq_prob}")
        if int(self.max_ngrams) < 1:
            raise FieldError("max_ngrams", f"{{max_ngrams}} must be >= 1, got {self.max_ngrams}")
        parse_masking_mix(self.masking_level)
        if int(self.seed) < 0:
            raise FieldError("seed", f"{{seed}} must be >= 0, got {self.seed}")
        if not float(self.cache_wait_timeout_s) > 0.0:
            raise FieldError(
                "cache_wait_timeout_s", f"{{cache_wait_timeout_s}} must be > 0, got {self.cache_wait_timeout_s}"
            )

    @property
    def masking_mix(self) -> Tuple[Tuple[str, float], ...]:
        """The parsed masking levels with weights summing to 1, e.g. (("word", 0.6), ("phrase", 0.4))."""
        return parse_masking_mix(self.masking_level)

    @property
    def split_fractions(self) -> Tuple[float, float, float]:
        """The parsed train/valid/test fractions (sum 1)."""
        return parse_split(self.split)

    @property
    def needs_knowledge(self) -> bool:
        """True when some masking level needs the knowledge span file (phrase or entity)."""
        return any(level in KNOWLEDGE_LEVELS for level, _ in self.masking_mix)
