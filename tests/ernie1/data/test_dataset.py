import pickle
import re

import numpy as np
import pytest

from ernie1.common.errors import FieldError, ToolkitError
from ernie1.data.dataset import ErnieDataset, truncation_counts
from ernie1.data.dataset_config import ErnieDatasetConfig
from ernie1.data.index_helpers import build_mapping
from ernie1.data.indexed_dataset import IndexedDatasetWriter, MMapIndexedDataset
from ernie1.data.knowledge_spans import KnowledgeSpans
from ernie1.data.masking import MaskingVocab, masking_budget, unit_spans
from ernie1.text.cjk import cjk_extension_tokens
from ernie1.text.knowledge import ENTITY, PHRASE
from tests import support

LEVELS = ("char", "word", "phrase", "entity")


@pytest.fixture(scope="module")
def indexed(tiny_prefix):
    return MMapIndexedDataset(tiny_prefix)


@pytest.fixture(scope="module")
def vocab(vocab_path):
    return MaskingVocab.from_vocab_file(str(vocab_path))


def mapping_for(indexed, max_seq_length, binary_head=True, samples=600, short_seq_prob=0.1):
    return build_mapping(
        indexed.doc_idx,
        indexed.sizes,
        max_seq_length=max_seq_length - 3,
        short_seq_prob=short_seq_prob,
        seed=7,
        min_num_sent=2 if binary_head else 1,
        max_num_samples=samples,
    )


def make_dataset(indexed, vocab, name="train", mapping=None, knowledge=None, split_seed=1234, **config):
    config.setdefault("max_seq_length", 64)
    cfg = ErnieDatasetConfig(indexed.prefix, **config)
    if mapping is None:
        mapping = mapping_for(indexed, cfg.max_seq_length, cfg.binary_head)
    return ErnieDataset(name, indexed, mapping, cfg, vocab, knowledge, split_seed)


def unmasked(sample):
    ids = sample["input_ids"].copy()
    ids[sample["masked_positions"]] = sample["masked_labels"]
    return ids


def as_text(ids):
    return "," + ",".join(map(str, ids)) + ","


def token_offset(corpus, piece):
    """Token offset of `piece` in `corpus` (id arrays) when it occurs exactly once, else None (ambiguous)."""
    corpus_text, piece_text = as_text(corpus), as_text(piece)
    found = corpus_text.find(piece_text)
    if found < 0 or corpus_text.find(piece_text, found + 1) >= 0:
        return None
    return corpus_text[:found].count(",")


def test_truncation_counts_match_the_one_token_loop():
    rng = np.random.default_rng(0)
    for _ in range(500):
        len_a, len_b, target = (int(v) for v in rng.integers(0, 40, 3))
        len_a += 1
        a, b = len_a, len_b
        while a + b > target and a + b > 0:
            if a > b:
                a -= 1
            else:
                b -= 1
        assert truncation_counts(len_a, len_b, target) == (len_a - a, len_b - b)


def test_sample_layout_and_sop(indexed, vocab):
    ds = make_dataset(indexed, vocab)
    swapped = checked = 0
    for i in range(len(ds)):
        sample = ds[i]
        ids, types = sample["input_ids"], sample["token_type_ids"]
        assert ids.dtype == np.int64 and types.dtype == np.int64 and ids.shape == types.shape
        assert len(ids) <= 64
        sep = np.flatnonzero(ids == vocab.sep_id)
        assert ids[0] == vocab.cls_id and len(sep) == 2 and sep[1] == len(ids) - 1
        assert sep[0] >= 2, "segment A must not be empty"
        assert types[: sep[0] + 1].tolist() == [0] * (sep[0] + 1) and types[sep[0] + 1 :].tolist() == [1] * (
            len(ids) - sep[0] - 1
        )
        start, end, target = (int(v) for v in ds.samples_mapping[i])
        assert len(ids) - 3 <= min(target, 61)
        # Both segments are contiguous corpus text; their order tells the SOP label.
        corpus = vocab.restore(indexed.ids[indexed.pointers[start] : indexed.pointers[end]])
        full = unmasked(sample)
        seg_a, seg_b = full[1 : sep[0]], full[sep[0] + 1 : -1]
        assert as_text(seg_a) in as_text(corpus) and as_text(seg_b) in as_text(corpus)
        pos_a, pos_b = token_offset(corpus, seg_a), token_offset(corpus, seg_b)
        label = int(sample["sop_label"])
        if pos_a is not None and pos_b is not None:
            assert label == (1 if pos_b < pos_a else 0)
            checked += 1
        swapped += label
        assert sample["masking_level"] == "word"
    assert abs(swapped / len(ds) - 0.5) < 0.06
    assert checked > 0.9 * len(ds)


def test_masking_statistics_and_whole_words(indexed, vocab):
    ds = make_dataset(indexed, vocab, max_seq_length=128)
    masked = tokens = as_mask = checked = 0
    for i in range(len(ds)):
        sample = ds[i]
        positions, labels, ids = sample["masked_positions"], sample["masked_labels"], sample["input_ids"]
        assert positions.dtype == np.int64 and labels.dtype == np.int64
        assert np.all(np.diff(positions) > 0)
        assert len(positions) <= masking_budget(len(ids), 0.15, 0.15 * 125)
        assert not np.any(np.isin(positions, np.flatnonzero((ids == vocab.cls_id) | (ids == vocab.sep_id))))
        assert np.all(ids < vocab.base_vocab_size) and np.all(labels < vocab.base_vocab_size)
        # Rebuild the raw (unrestored) sample to find its `##` groups; every group is masked whole or not at all.
        start, end, _ = (int(v) for v in ds.samples_mapping[i])
        raw = indexed.ids[indexed.pointers[start] : indexed.pointers[end]]
        restored_corpus = vocab.restore(raw)
        full = unmasked(sample)
        sep = int(np.flatnonzero(full == vocab.sep_id)[0])
        raw_sample = full.copy()
        offsets = [token_offset(restored_corpus, full[lo:hi]) for lo, hi in ((1, sep), (sep + 1, len(full) - 1))]
        if None in offsets:
            continue
        checked += 1
        for (lo, hi), first in zip(((1, sep), (sep + 1, len(full) - 1)), offsets):
            raw_sample[lo:hi] = raw[first : first + hi - lo]
        chosen = np.zeros(len(ids), bool)
        chosen[positions] = True
        for lo, hi in zip(*unit_spans(raw_sample, vocab, "word")):
            assert chosen[lo:hi].all() or not chosen[lo:hi].any()
        masked += len(positions)
        tokens += len(ids)
        as_mask += int(np.sum(ids[positions] == vocab.mask_id))
    assert abs(masked / tokens - 0.15) < 0.01
    assert abs(as_mask / masked - 0.8) < 0.03
    assert checked > 0.9 * len(ds)


def test_deterministic_per_split(indexed, vocab):
    train = make_dataset(indexed, vocab, name="train")
    again = make_dataset(indexed, vocab, name="train")
    valid = make_dataset(indexed, vocab, name="valid")
    other_seed = make_dataset(indexed, vocab, name="train", split_seed=99)
    differs_by_name = differs_by_seed = 0
    for i in range(50):
        first, second = train[i], again[i]
        for key in ("input_ids", "token_type_ids", "masked_positions", "masked_labels", "sop_label"):
            np.testing.assert_array_equal(first[key], second[key])
        differs_by_name += not np.array_equal(first["masked_positions"], valid[i]["masked_positions"])
        differs_by_seed += not np.array_equal(first["masked_positions"], other_seed[i]["masked_positions"])
    # Reading out of order does not change a sample.
    np.testing.assert_array_equal(train[3]["input_ids"], again[3]["input_ids"])
    assert differs_by_name >= 45 and differs_by_seed >= 45
    assert train[-1]["input_ids"].tolist() == train[len(train) - 1]["input_ids"].tolist()
    with pytest.raises(IndexError):
        train[len(train)]


def test_zero_masked_lm_prob(indexed, vocab):
    ds = make_dataset(indexed, vocab, masked_lm_prob=0.0)
    for i in range(30):
        sample = ds[i]
        assert sample["masked_positions"].shape == (0,) and sample["masked_labels"].shape == (0,)
        assert vocab.mask_id not in sample["input_ids"]


def test_without_binary_head(indexed, vocab):
    ds = make_dataset(indexed, vocab, binary_head=False)
    for i in range(len(ds)):
        sample = ds[i]
        ids = sample["input_ids"]
        assert int(sample["sop_label"]) == 0
        assert np.flatnonzero(ids == vocab.sep_id).tolist() == [len(ids) - 1]
        assert not sample["token_type_ids"].any()
        assert len(ids) >= 3


def test_truncation_keeps_a_non_empty(indexed, vocab):
    # Hand-made rows: two sentences each, squeezed into 1..6 tokens (target 1 leaves B empty).
    docs = indexed.doc_idx
    rows = [(int(docs[d]), int(docs[d]) + 2, target) for d in range(20) for target in (1, 2, 3, 6)]
    ds = make_dataset(indexed, vocab, mapping=np.array(rows, dtype=np.uint32))
    for i, (_, _, target) in enumerate(rows):
        sample = ds[i]
        sep = np.flatnonzero(sample["input_ids"] == vocab.sep_id)
        len_a = int(sep[0]) - 1
        len_b = len(sample["input_ids"]) - len_a - 3 if len(sep) == 2 else 0
        assert len_a >= 1 and len_a >= len_b
        assert len_a + len_b == target


@pytest.mark.parametrize("level,kind", [("entity", ENTITY), ("phrase", PHRASE)])
def test_knowledge_levels_mask_whole_spans(indexed, vocab, level, kind):
    knowledge = support.synthetic_knowledge(indexed, vocab)
    ds = make_dataset(indexed, vocab, knowledge=knowledge, masking_level=level, max_seq_length=128)
    whole = checked = 0
    for i in range(200):
        sample = ds[i]
        assert sample["masking_level"] == level
        start, end, _ = (int(v) for v in ds.samples_mapping[i])
        full = unmasked(sample)
        spans = ds._sample_spans(level, int(indexed.pointers[start]), *kept_ranges(ds, i)[1:])
        if spans[0] is None:  # truncation kept no span of this sample
            spans = ((), ())
        chosen = np.zeros(len(full), bool)
        chosen[sample["masked_positions"]] = True
        for lo, hi in zip(*spans):
            assert chosen[lo:hi].all() or not chosen[lo:hi].any()
            whole += int(chosen[lo:hi].all())
            checked += 1
        # Every returned span is a span of that kind, shifted into the sample (compare the text it covers).
        corpus = vocab.restore(indexed.ids[indexed.pointers[start] : indexed.pointers[end]])
        expected = {
            as_text(corpus[lo + offset : hi + offset])
            for s in range(start, end)
            for lo, hi, k in zip(*knowledge.spans_of_sentence(s))
            if k == kind
            for offset in [int(indexed.pointers[s] - indexed.pointers[start])]
        }
        for lo, hi in zip(*spans):
            assert any(as_text(full[lo:hi]) in text for text in expected)
    assert checked > 500 and whole > 0.05 * checked


def kept_ranges(ds, i):
    """Re-derive segment B's range and the kept token ranges of sample i as __getitem__ does (same RNG stream)."""
    start, end, target = (int(v) for v in ds.samples_mapping[i])
    rng = ds.rng_for(i)
    head = rng.random(3)
    begin = int(ds.indexed.pointers[start])
    segment_a, segment_b, _ = ds._segments(start, end, begin, head[1], head[2])
    return (segment_b, *ds._truncate(segment_a, segment_b, max(1, min(target, ds._max_num_tokens)), rng))


def test_mixed_levels(indexed, vocab):
    knowledge = support.synthetic_knowledge(indexed, vocab)
    ds = make_dataset(indexed, vocab, knowledge=knowledge, masking_level="word:0.5,entity:0.3,phrase:0.2")
    levels = [ds[i]["masking_level"] for i in range(len(ds))]
    shares = {level: levels.count(level) / len(levels) for level in ("word", "entity", "phrase")}
    assert abs(shares["word"] - 0.5) < 0.07 and abs(shares["entity"] - 0.3) < 0.07
    assert abs(shares["phrase"] - 0.2) < 0.07


def test_knowledge_required_and_checked(indexed, vocab):
    with pytest.raises(FieldError) as error:
        make_dataset(indexed, vocab, masking_level="word:0.5,entity:0.5")
    assert re.match(
        r"^--masking_level word:0.5,entity:0.5: phrase/entity masking needs knowledge spans \(.*tiny_knowledge"
        r"\.npz not found\); re-run create_pretraining_data.py with --knowledge_spans or use --masking_level word$",
        error.value.render(lambda field: f"--{field}"),
    )
    with pytest.raises(FieldError) as error:
        make_dataset(indexed, vocab, masking_schedule="word:0-0.5,phrase:0.5-1", max_steps=10)
    assert re.match(
        r"^--masking_schedule word:0-0.5,phrase:0.5-1: phrase/entity masking needs knowledge spans \(.*"
        r"tiny_knowledge\.npz not found\); re-run create_pretraining_data.py with --knowledge_spans or use char and "
        r"word stages only$",
        error.value.render(lambda field: f"--{field}"),
    )
    short = KnowledgeSpans(np.zeros(3, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.uint8))
    with pytest.raises(ToolkitError, match=r"tiny_knowledge.npz: spans for 2 sentences but the corpus has \d+"):
        make_dataset(indexed, vocab, masking_level="entity", knowledge=short)


def test_pickles_file_names_not_arrays(indexed, vocab, tmp_path):
    path = tmp_path / "map.npy"
    np.save(path, mapping_for(indexed, 64))
    ds = make_dataset(indexed, vocab, mapping=np.load(path, mmap_mode="r"))
    state = ds.__getstate__()
    assert state["samples_mapping"] == ("npy", str(path)) and state["_prefix"] == indexed.prefix
    assert not any(isinstance(value, MMapIndexedDataset) for value in state.values())
    clone = pickle.loads(pickle.dumps(ds))
    assert isinstance(clone.samples_mapping, np.memmap) and len(clone) == len(ds)
    for i in (0, 7, len(ds) - 1):
        for key in ("input_ids", "token_type_ids", "masked_positions", "masked_labels", "sop_label"):
            np.testing.assert_array_equal(clone[i][key], ds[i][key])


def test_extended_ids_never_reach_the_model(tmp_path):
    """A corpus written with `##字` extension ids (above the base vocab): inputs and labels hold plain chars."""
    base = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "哈", "尔", "滨", "冰", "雪", "节", "a", "##b"]
    vocab = MaskingVocab.from_tokens(base + cjk_extension_tokens(base), len(base))
    index = {token: i for i, token in enumerate(vocab.tokens)}
    heads = [index[t] for t in ("哈", "尔", "滨", "冰", "雪", "节", "a")]
    tails = [index[t] for t in ("##哈", "##尔", "##滨", "##冰", "##雪", "##节", "##b")]
    assert min(tails[:-1]) >= len(base)
    rng = np.random.default_rng(5)
    writer = IndexedDatasetWriter(str(tmp_path / "ext"), np.uint16)
    for _ in range(30):
        sentences = []
        for _ in range(4):
            words = [[int(rng.choice(heads)), *rng.choice(tails, int(rng.integers(0, 3))).tolist()] for _ in range(12)]
            sentences.append([token for word in words for token in word])
        writer.add_document(sentences)
    writer.finalize()
    extended = MMapIndexedDataset(str(tmp_path / "ext"))
    assert int(np.max(extended.ids)) >= len(base)
    ds = make_dataset(extended, vocab, max_seq_length=32)
    masked = 0
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["input_ids"].max() < len(base) and sample["masked_labels"].max(initial=0) < len(base)
        assert not any(token.startswith("##") and token != "##b" for token in vocab.decode(sample["input_ids"]))
        masked += len(sample["masked_positions"])
    assert masked > 0


def test_entity_level_masks_the_samples_entities_first(indexed, vocab):
    """Every entity span of a sample is masked whole while they fit the budget; words fill the rest, outside them."""
    knowledge = support.synthetic_knowledge(indexed, vocab, every=4)
    entity = make_dataset(indexed, vocab, knowledge=knowledge, masking_level="entity", max_seq_length=128)
    word = make_dataset(indexed, vocab, knowledge=knowledge, masking_level="word", max_seq_length=128)
    predicted = budgets = entity_share_at_entity = entity_share_at_word = 0
    for i in range(300):
        start = int(entity.samples_mapping[i][0])
        spans = entity._sample_spans("entity", int(indexed.pointers[start]), *kept_ranges(entity, i)[1:])
        if spans[0] is None:
            continue
        sample = entity[i]
        budget = masking_budget(len(sample["input_ids"]), 0.15, 0.15 * 125)
        chosen = np.zeros(len(sample["input_ids"]), bool)
        chosen[sample["masked_positions"]] = True
        in_spans = np.zeros_like(chosen)
        lengths = spans[1] - spans[0]
        taken = np.array([chosen[lo:hi].all() for lo, hi in zip(*spans)])
        for lo, hi in zip(*spans):
            assert chosen[lo:hi].all() or not chosen[lo:hi].any()
            in_spans[lo:hi] = True
        if lengths.sum() <= budget:
            assert taken.all()
        else:  # greedy in random order: no span left out would still have fit
            assert lengths[taken].sum() <= budget and (budget - lengths[taken].sum() < lengths[~taken]).all()
        assert chosen.sum() <= budget
        predicted += chosen.sum()
        budgets += budget
        entity_share_at_entity += chosen[in_spans].sum()
        word_chosen = np.zeros_like(chosen)
        word_chosen[word[i]["masked_positions"]] = True
        entity_share_at_word += word_chosen[in_spans].sum()
    assert predicted >= 0.97 * budgets
    assert entity_share_at_entity > 3 * entity_share_at_word


def test_masking_schedule_follows_the_sample_index(indexed, vocab):
    """Train sample i gets the level of step i // global_batch_size, and is the sample that level alone gives."""
    knowledge = support.synthetic_knowledge(indexed, vocab)
    schedule = dict(masking_schedule="char:0-0.25,word:0.25-0.5,entity:0.5-1", max_steps=8, global_batch_size=4)
    ds = make_dataset(indexed, vocab, knowledge=knowledge, **schedule)
    fixed = {level: make_dataset(indexed, vocab, knowledge=knowledge, masking_level=level) for level in LEVELS}
    expected = ["char"] * 8 + ["word"] * 8 + ["entity"] * 16 + ["entity"] * 8  # steps 0-1, 2-3, 4-7, past the end
    for i, level in enumerate(expected):
        sample = ds[i]
        assert sample["masking_level"] == level
        for key in ("input_ids", "token_type_ids", "masked_positions", "masked_labels", "sop_label"):
            np.testing.assert_array_equal(sample[key], fixed[level][i][key])
    valid = make_dataset(indexed, vocab, name="valid", knowledge=knowledge, **schedule)
    assert {valid[i]["masking_level"] for i in range(40)} == {"entity"}


def test_a_blend_places_samples_on_the_schedule_by_its_own_index(indexed, vocab):
    from ernie1.data.blending import BlendableDataset

    knowledge = support.synthetic_knowledge(indexed, vocab)
    schedule = dict(masking_schedule="char:0-0.25,word:0.25-0.5,entity:0.5-1", max_steps=8, global_batch_size=4)
    parts = [make_dataset(indexed, vocab, knowledge=knowledge, split_seed=seed, **schedule) for seed in (1, 2)]
    blend = BlendableDataset(parts, [1.0, 1.0], size=40)
    levels = [blend[i]["masking_level"] for i in range(40)]
    assert levels == ["char"] * 8 + ["word"] * 8 + ["entity"] * 24
    sample, details = blend.build(9)  # slot 9 is sample 4 of a corpus: its own index would say step 1 (char)
    assert sample["masking_level"] == "word" and details.knowledge_starts.shape == (0,)
