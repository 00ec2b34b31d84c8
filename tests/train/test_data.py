"""Which curated rows a training job trains on and holds out: a hash share of the rows, or a
corpus's own splits named by where the rows were read from; and the order an epoch reads them
in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pytest
import torch

from weft.cluster import DATA_CPUS
from weft.models.images import to_png
from weft.models.tokenizer import Tokenizer
from weft.specs import SpecError, parse_spec
from weft.train.data import batches, drop_words, selected, split_side
from weft.train.spec import DataSpec, TrainSpec

SPLITS = ("/c/raw/train", "/c/raw/val", "/c/raw/test", "/c/raw/training-extra")


def batch() -> pa.Table:
    """40 pairs, 10 read from under each split folder, and one text-only document."""
    uris = [f"{SPLITS[i % 4]}/shard-{i:05d}.tar" for i in range(40)] + ["/c/raw/docs/a.jsonl"]
    return pa.table(
        {
            "id": [f"row-{i}" for i in range(41)],
            "source_uri": uris,
            "image": [b"png"] * 40 + [None],
        }
    )


def folders(table: pa.Table) -> set[str]:
    return {u.rsplit("/", 1)[0] for u in table["source_uri"].to_pylist()}


def test_a_hash_share_is_held_out_and_text_only_rows_are_on_neither_side() -> None:
    train = split_side(batch(), 25.0, held_out=False)
    held = split_side(batch(), 25.0, held_out=True)
    assert train.num_rows + held.num_rows == 40 and 0 < held.num_rows < 20
    assert not set(train["id"].to_pylist()) & set(held["id"].to_pylist())


def test_sources_and_val_sources_pick_a_corpus_own_splits() -> None:
    picked = {"sources": ["/c/raw/train"], "val_sources": ["/c/raw/val/"]}
    train = split_side(batch(), 25.0, held_out=False, **picked)
    held = split_side(batch(), 25.0, held_out=True, **picked)
    assert folders(train) == {"/c/raw/train"} and train.num_rows == 10  # not training-extra
    assert folders(held) == {"/c/raw/val"} and held.num_rows == 10


def test_sources_alone_keep_the_hash_share_within_them() -> None:
    train = split_side(batch(), 50.0, held_out=False, sources=["/c/raw/test"])
    held = split_side(batch(), 50.0, held_out=True, sources=["/c/raw/test"])
    assert folders(train) | folders(held) == {"/c/raw/test"}
    assert train.num_rows + held.num_rows == 10


def test_rows_are_picked_by_key_and_train_on_the_part_of_their_text_the_pattern_finds() -> None:
    rows = pa.table(
        {
            "key": ["1f600_en", "1f600_de", "1f697_en", "1f431_en"],
            "text": [
                "grinning face: face, grin",
                "grinsendes Gesicht: Gesicht",
                "automobile",
                None,
            ],
        }
    )
    picked = selected(rows, keys="_en$", text_pattern=r"^([^:]+)")
    assert picked["key"].to_pylist() == ["1f600_en", "1f697_en"]  # no text: nothing to find
    assert picked["text"].to_pylist() == ["grinning face", "automobile"]
    assert selected(rows, keys=None, text_pattern=r"Gesicht")["text"].to_pylist() == ["Gesicht"]
    assert selected(rows, keys="_fr$", text_pattern="^[^:]+").num_rows == 0  # a block of none


def test_a_pattern_that_is_not_a_regular_expression_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"job\.yaml: text_pattern: not a regular expression"):
        parse_spec(DataSpec, {"uri": "x", "text_pattern": "(unclosed"}, "job.yaml")


def test_word_dropout_leaves_words_out_in_order_and_always_keeps_one() -> None:
    rng = np.random.default_rng(0)
    text = "grinning face: face, grin, happy, smile"
    views = [drop_words(text, 0.5, rng) for _ in range(200)]
    assert len(set(views)) > 10  # new views of one caption
    for view in views:
        words = view.split()
        assert words and all(w in text.split() for w in words)
        positions = [text.split().index(w) for w in words]
        assert positions == sorted(positions)
    shares = np.mean([len(v.split()) for v in views]) / len(text.split())
    assert 0.4 < shares < 0.6
    assert {drop_words("cat", 0.99, rng) for _ in range(20)} == {"cat"}
    assert drop_words(text, 0.0, rng) == text


@contextmanager
def cpus_held_but_data_share() -> Iterator[None]:
    """Every CPU of the local Ray reserved (a placement group), as training workers hold
    theirs, but the share a run leaves to Ray Data (`DATA_CPUS`)."""
    import ray
    from ray.util import placement_group, remove_placement_group

    held = placement_group([{"CPU": ray.cluster_resources()["CPU"] - DATA_CPUS}])
    ray.get(held.ready())
    try:
        yield
    finally:
        remove_placement_group(held)


def epoch_orders(
    shuffle: str, epochs: int
) -> tuple[list[tuple[int, ...]], list[list[tuple[int, ...]]]]:
    """The captions' token ids as stored, and in the order each epoch's training batches
    hold them, for 64 pairs stored in one block, under `data.shuffle: shuffle`, with only
    Ray Data's share of the CPUs free."""
    import ray

    texts = [f"caption {i}" for i in range(64)]
    png = to_png(torch.zeros(3, 8, 8))
    ds = ray.data.from_items(
        [{"id": str(i), "text": t, "image": png} for i, t in enumerate(texts)],
        override_num_blocks=1,
    )
    tokenizer = Tokenizer.train(texts, vocab_size=300, min_frequency=1)
    spec = parse_spec(
        TrainSpec,
        {"name": "t", "model": "clip-tiny", "data": {"uri": "unused", "shuffle": shuffle}},
    )
    stored = [tuple(row) for row in tokenizer.encode(texts, 8).tolist()]
    pipeline = batches(ds, tokenizer, spec, size=8, length=8, train=True)
    with cpus_held_but_data_share():
        orders = [
            [
                tuple(row)
                for b in pipeline.iter_batches(batch_size=None)
                for row in b["ids"].tolist()
            ]
            for _ in range(epochs)
        ]
    return stored, orders


@pytest.mark.timeout(180)  # a data task that asks for more than Ray Data's share waits forever
@pytest.mark.usefixtures("ray_session")
def test_a_global_shuffle_reads_each_epoch_in_a_new_order_and_a_buffer_keeps_the_stored_one() -> (
    None
):
    stored, (first, second) = epoch_orders("global", epochs=2)
    assert sorted(first) == sorted(second) == sorted(stored)  # every row, once an epoch
    assert first != stored and second != stored and first != second
    stored, (kept,) = epoch_orders("buffer", epochs=1)
    assert kept == stored
