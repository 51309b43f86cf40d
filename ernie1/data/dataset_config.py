"""Typed configuration of the ERNIE pretraining dataset (sample construction + masking), validated at creation."""

from __future__ import annotations

import bisect
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


def parse_masking_schedule(spec: str) -> Tuple[Tuple[str, float, float], ...]:
    """Parse `char:0-0.3,phrase:0.3-0.6,entity:0.6-1` into ((level, start, end), ...); ToolkitError if bad.

    Stages are fractions of the run's steps: contiguous, from 0 to 1, each with start < end.
    """
    stages: list[Tuple[str, float, float]] = []
    for part in (p.strip() for p in str(spec).split(",")):
        name, colon, bounds = (x.strip() for x in part.partition(":"))
        low, dash, high = (x.strip() for x in bounds.partition("-"))
        try:
            start, end = float(low), float(high)
        except ValueError:
            start = end = float("nan")
        if not (colon and dash) or not 0.0 <= start < end <= 1.0:
            raise FieldError(
                "masking_schedule",
                f"{{masking_schedule}} {spec!r}: stage {part!r} is not level:start-end with 0 <= start < end <= 1 "
                "(fractions of the run's steps, e.g. char:0-0.3,phrase:0.3-0.6,entity:0.6-1)",
            )
        if name not in MASKING_LEVELS:
            raise FieldError(
                "masking_schedule",
                f"{{masking_schedule}} {spec!r}: unknown level {name!r}; use one of {', '.join(MASKING_LEVELS)}",
            )
        expected = stages[-1][2] if stages else 0.0
        if start != expected:
            raise FieldError(
                "masking_schedule",
                f"{{masking_schedule}} {spec!r}: stage {part!r} starts at {low}, not where the previous one ends "
                f"({expected:g}); the stages must cover 0-1 without gaps or overlaps",
            )
        stages.append((name, start, end))
    if stages[-1][2] != 1.0:
        raise FieldError(
            "masking_schedule",
            f"{{masking_schedule}} {spec!r}: the last stage ends at {stages[-1][2]:g}; it must end at 1 (the last step)",
        )
    return tuple(stages)


@dataclass(frozen=True)
class MaskingSchedule:
    """Masking levels over the run's steps: stage k holds the steps first_steps[k] <= s < first_steps[k+1], s counted
    from 0 (the steps done before the one that reads the sample).

    The train split is read in order, so train sample i is read at step i // global_batch_size: its level is a pure
    function of i, the same on every rank and worker and after a resume.
    """

    levels: Tuple[str, ...]
    first_steps: Tuple[int, ...]
    global_batch_size: int
    max_steps: int

    @classmethod
    def from_stages(
        cls, stages: Tuple[Tuple[str, float, float], ...], max_steps: int, global_batch_size: int
    ) -> "MaskingSchedule":
        """Stage k starts at the first step s with s / max_steps >= its start fraction (that float test exactly)."""
        first_steps = []
        for _level, start, _end in stages:
            step = min(max_steps, int(start * max_steps))
            while step > 0 and (step - 1) / max_steps >= start:
                step -= 1
            while step / max_steps < start:
                step += 1
            first_steps.append(step)
        levels = tuple(level for level, _, _ in stages)
        return cls(levels, tuple(first_steps), int(global_batch_size), int(max_steps))

    def level_of_step(self, step: int) -> str:
        """The level of step `step` (counted from 0; steps past the run stay in the last stage)."""
        return self.levels[bisect.bisect_right(self.first_steps, step) - 1]

    def level_of_sample(self, index: int) -> str:
        """The level of train sample `index`."""
        return self.level_of_step(index // self.global_batch_size)

    def describe(self) -> str:
        """`char for steps 1-3, phrase for steps 4-6, entity for steps 7-10` (global steps as the log counts them,
        from 1; a stage too short to hold a step is left out)."""
        ends = (*self.first_steps[1:], self.max_steps)
        return ", ".join(
            f"{level} for steps {first + 1}-{end}"
            for level, first, end in zip(self.levels, self.first_steps, ends)
            if end > first
        )


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
    masking_schedule: stages over training steps instead of one level or mix, such as
        "char:0-0.3,phrase:0.3-0.6,entity:0.6-1" (ERNIE 1.0's staged training; "" = none). Train sample i is masked
        at the level of the stage holding step (i // global_batch_size) / max_steps; valid and test samples at the
        last stage's level.
    knowledge_mask_share: at phrase/entity level, the share of the masking budget that whole knowledge spans of
        that kind may take first (1.0: all that fit); whole words fill the rest.
    global_batch_size: train samples per optimizer step (the train split is read in order: sample i at step
        i // global_batch_size); the clock of masking_schedule.
    max_steps: optimizer steps of the run; masking_schedule's fractions are of these steps (0: no schedule).
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
    masking_schedule: str = ""
    knowledge_mask_share: float = 1.0
    global_batch_size: int = 1
    max_steps: int = 0
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
        self._check_schedule()
        if not 0.0 <= float(self.knowledge_mask_share) <= 1.0:
            raise FieldError(
                "knowledge_mask_share",
                f"{{knowledge_mask_share}} must be in [0, 1], got {self.knowledge_mask_share}",
            )
        if int(self.seed) < 0:
            raise FieldError("seed", f"{{seed}} must be >= 0, got {self.seed}")
        if not float(self.cache_wait_timeout_s) > 0.0:
            raise FieldError(
                "cache_wait_timeout_s", f"{{cache_wait_timeout_s}} must be > 0, got {self.cache_wait_timeout_s}"
            )

    def _check_schedule(self) -> None:
        if not self.masking_schedule:
            return
        parse_masking_schedule(self.masking_schedule)
        if self.masking_level != "word":
            raise FieldError(
                "masking_schedule",
                f"{{masking_schedule}} and {{masking_level}} {self.masking_level} both choose the masking levels; "
                "pass only one (a schedule of stages, or a level or per-sample mix)",
                "masking_level",
            )
        if int(self.max_steps) < 1 or int(self.global_batch_size) < 1:
            raise FieldError(
                "masking_schedule",
                f"{{masking_schedule}} needs the run's {{max_steps}} (got {self.max_steps}) and {{global_batch_size}} "
                f"(got {self.global_batch_size}), both >= 1: its stages are fractions of the run's steps",
                "max_steps",
                "global_batch_size",
            )

    @property
    def masking_stages(self) -> Tuple[Tuple[str, float, float], ...]:
        """The parsed masking schedule ((level, start, end), ...); () without one."""
        return parse_masking_schedule(self.masking_schedule) if self.masking_schedule else ()

    def split_masking_mix(self, split: str) -> Tuple[Tuple[str, float], ...]:
        """The per-sample level mix of `split` when it follows no schedule: `masking_level`'s; with a schedule (the
        train split follows it), the last stage's level, so every evaluation of a run measures the same task."""
        stages = self.masking_stages
        return ((stages[-1][0], 1.0),) if stages and split != "train" else self.masking_mix

    def schedule(self) -> "MaskingSchedule | None":
        """The train split's masking schedule, or None without one."""
        stages = self.masking_stages
        if not stages:
            return None
        return MaskingSchedule.from_stages(stages, int(self.max_steps), int(self.global_batch_size))

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
        levels = [level for level, _ in self.masking_mix] + [level for level, _, _ in self.masking_stages]
        return any(level in KNOWLEDGE_LEVELS for level in levels)
