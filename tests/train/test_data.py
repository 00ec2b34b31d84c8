"""Which curated rows a training job trains on and holds out: a hash share of the rows, or a
corpus's own splits named by where the rows were read from."""

from __future__ import annotations

import pyarrow as pa

from weft.train.data import split_side

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
