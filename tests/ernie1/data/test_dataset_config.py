"""The masking schedule and knowledge share of the dataset config: parsing, the step clock, one-line errors."""

import pytest

from ernie1.common.errors import FieldError
from ernie1.data.dataset_config import ErnieDatasetConfig, MaskingSchedule, parse_masking_schedule

PAPER = "char:0-0.3,phrase:0.3-0.6,entity:0.6-1"


def test_schedule_switches_at_the_stated_steps():
    schedule = ErnieDatasetConfig("x", masking_schedule=PAPER, max_steps=10, global_batch_size=4).schedule()
    assert schedule == MaskingSchedule(("char", "phrase", "entity"), (0, 3, 6), 4, 10)
    # Step s (counted from 0) reads samples 4s .. 4s+3: steps 0-2 char, 3-5 phrase, 6-9 entity.
    assert [schedule.level_of_sample(i) for i in range(0, 44, 4)] == ["char"] * 3 + ["phrase"] * 3 + ["entity"] * 5
    assert {schedule.level_of_sample(i) for i in range(12, 16)} == {"phrase"}  # a step never mixes levels
    assert schedule.describe() == "char for steps 1-3, phrase for steps 4-6, entity for steps 7-10"
    # 0.3 * 10 is 3.0000000000000004 in floats: the stage still starts at step 3 (3 / 10 >= 0.3).
    assert MaskingSchedule.from_stages(parse_masking_schedule(PAPER), 10, 1).first_steps == (0, 3, 6)
    # Fractions that fall between steps start at the next step; a stage shorter than a step holds none.
    odd = MaskingSchedule.from_stages(parse_masking_schedule("char:0-0.05,word:0.05-0.55,entity:0.55-1"), 7, 1)
    assert (
        odd.first_steps == (0, 1, 4)
        and odd.describe() == "char for steps 1-1, word for steps 2-4, entity for steps 5-7"
    )
    empty = MaskingSchedule.from_stages(parse_masking_schedule("char:0-0.31,word:0.31-0.35,entity:0.35-1"), 10, 1)
    assert empty.first_steps == (0, 4, 4) and empty.describe() == "char for steps 1-4, entity for steps 5-10"
    assert [empty.level_of_step(step) for step in (3, 4, 20)] == ["char", "entity", "entity"]


def test_eval_splits_use_the_last_stage_and_knowledge_is_needed_when_a_stage_needs_it():
    config = ErnieDatasetConfig("x", masking_schedule=PAPER, max_steps=10, global_batch_size=4)
    assert config.split_masking_mix("valid") == config.split_masking_mix("test") == (("entity", 1.0),)
    assert config.needs_knowledge
    plain = ErnieDatasetConfig("x", masking_schedule="char:0-0.5,word:0.5-1", max_steps=10)
    assert not plain.needs_knowledge and plain.split_masking_mix("valid") == (("word", 1.0),)
    assert ErnieDatasetConfig("x", masking_level="word:1,entity:1").split_masking_mix("valid") == (
        ("word", 0.5),
        ("entity", 0.5),
    )
    assert ErnieDatasetConfig("x").schedule() is None


@pytest.mark.parametrize(
    "fields,message",
    [
        (
            {"masking_schedule": "char:0-0.3,entity:0.5-1"},
            "--masking_schedule 'char:0-0.3,entity:0.5-1': stage 'entity:0.5-1' starts at 0.5, not where the previous "
            "one ends (0.3); the stages must cover 0-1 without gaps or overlaps",
        ),
        (
            {"masking_schedule": "char:0-0.6,word:0.5-1"},
            "--masking_schedule 'char:0-0.6,word:0.5-1': stage 'word:0.5-1' starts at 0.5, not where the previous one "
            "ends (0.6); the stages must cover 0-1 without gaps or overlaps",
        ),
        (
            {"masking_schedule": "word:0-0.5"},
            "--masking_schedule 'word:0-0.5': the last stage ends at 0.5; it must end at 1 (the last step)",
        ),
        (
            {"masking_schedule": "word:0.2-1"},
            "--masking_schedule 'word:0.2-1': stage 'word:0.2-1' starts at 0.2, not where the previous one ends (0); "
            "the stages must cover 0-1 without gaps or overlaps",
        ),
        (
            {"masking_schedule": "words:0-1"},
            "--masking_schedule 'words:0-1': unknown level 'words'; use one of char, word, phrase, entity",
        ),
        (
            {"masking_schedule": "entity"},
            "--masking_schedule 'entity': stage 'entity' is not level:start-end with 0 <= start < end <= 1 "
            "(fractions of the run's steps, e.g. char:0-0.3,phrase:0.3-0.6,entity:0.6-1)",
        ),
        (
            {"masking_schedule": "word:0.5-0.5,entity:0.5-1"},
            "--masking_schedule 'word:0.5-0.5,entity:0.5-1': stage 'word:0.5-0.5' is not level:start-end with "
            "0 <= start < end <= 1 (fractions of the run's steps, e.g. char:0-0.3,phrase:0.3-0.6,entity:0.6-1)",
        ),
        (
            {"masking_schedule": PAPER, "masking_level": "word:0.5,entity:0.5"},
            "--masking_schedule and --masking_level word:0.5,entity:0.5 both choose the masking levels; pass only one "
            "(a schedule of stages, or a level or per-sample mix)",
        ),
        (
            {"masking_schedule": PAPER, "max_steps": 0},
            "--masking_schedule needs the run's --max_steps (got 0) and --global_batch_size (got 1), both >= 1: its "
            "stages are fractions of the run's steps",
        ),
        ({"knowledge_mask_share": 1.5}, "--knowledge_mask_share must be in [0, 1], got 1.5"),
        ({"knowledge_mask_share": -0.1}, "--knowledge_mask_share must be in [0, 1], got -0.1"),
    ],
)
def test_bad_schedule_or_share_is_one_line_naming_the_flags(fields, message):
    fields = {"max_steps": 10, **fields}
    with pytest.raises(FieldError) as error:
        ErnieDatasetConfig("x", **fields)
    assert error.value.render(lambda field: f"--{field}") == message
