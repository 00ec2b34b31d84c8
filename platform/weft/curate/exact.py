"""Exact dedup: content hashes of normalised text and image bytes; one row per hash is kept.

Three steps, all on Ray Data in `pipeline.py`: `ContentHash` hashes every kept row;
`duplicates_in_block` runs on blocks hash-partitioned by the dedup key, so every copy of a
content lands in one block; `MarkDuplicates` removes the copies. The kept row of a group is
the smallest (source_uri, key), so reruns keep the same row.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft.curate.schema import (
    KEPT,
    REMOVED,
    Decision,
    active,
    decide,
    kept_values,
    with_columns,
)

STAGE = "exact_dedup"
Match = Literal["both", "text", "image"]


DUPLICATES = pa.schema(
    [
        ("id", pa.string()),
        ("duplicate_of", pa.string()),
        ("similarity", pa.float64()),
        ("detail", pa.string()),
    ]
)


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ContentHash:
    """Stage: fill `text_hash` and `image_hash` of kept rows."""

    name = "hash"
    actors: ClassVar[int] = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        text_hash: list[str | None] = [None] * batch.num_rows
        image_hash: list[str | None] = [None] * batch.num_rows
        for i, text in kept_values(batch, "text"):
            text_hash[i] = content_hash(text.encode())
        for i, image in kept_values(batch, "image"):
            image_hash[i] = content_hash(image)
        return with_columns(batch, text_hash=text_hash, image_hash=image_hash)


def dedup_keys(batch: pa.Table, match: Match) -> pa.Table:
    """The narrow table the grouping shuffles: kept rows' (id, source_uri, key, dedup_key).

    A text-only row has no image hash; under `image` it is matched by its text instead.
    """
    batch = batch.filter(active(batch))
    text = batch["text_hash"]
    image = pc.fill_null(batch["image_hash"], "")
    if match == "text":
        key = text
    elif match == "image":
        key = pc.if_else(pc.equal(image, ""), pc.binary_join_element_wise("t", text, ":"), image)
    else:
        key = pc.binary_join_element_wise(text, image, "|")
    return pa.table(
        {
            "id": batch["id"],
            "source_uri": batch["source_uri"],
            "key": batch["key"],
            "dedup_key": key,
        }
    )


def duplicates_in_block(block: pa.Table, match: Match) -> pa.Table:
    """(id, duplicate_of, detail) for every row of `block` whose dedup key an earlier row has.

    `block` must hold every row of each dedup key it contains (a hash-partitioned block).
    """
    if block.num_rows == 0:
        return DUPLICATES.empty_table()
    block = block.sort_by(
        [("dedup_key", "ascending"), ("source_uri", "ascending"), ("key", "ascending")]
    )
    keys = block["dedup_key"].to_numpy(zero_copy_only=False)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    group_start = np.flatnonzero(first)[np.cumsum(first) - 1]
    ids = block["id"].to_numpy(zero_copy_only=False)
    dup = ~first
    kept = ids[group_start][dup]
    return pa.table(
        {
            "id": ids[dup],
            "duplicate_of": kept,
            "similarity": np.ones(len(kept)),
            "detail": [f"same {match} as {k}" for k in kept],
        },
        schema=DUPLICATES,
    )


class MarkDuplicates:
    """Stage: remove the rows named in a DUPLICATES table, held once per actor.

    Subclasses name another dedup stage and its reason code; the logic is this one.
    """

    name = STAGE
    reason = "exact_duplicate"
    actors: ClassVar[int] = 2

    def __init__(self, duplicates: pa.Table) -> None:
        self.duplicates = {
            row["id"]: Decision(
                REMOVED,
                self.name,
                self.reason,
                row["detail"],
                row["duplicate_of"],
                row["similarity"],
            )
            for row in duplicates.to_pylist()
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        decisions = {
            i: found
            for i, (row_id, status) in enumerate(
                zip(batch["id"].to_pylist(), batch["status"].to_pylist(), strict=True)
            )
            if status == KEPT and (found := self.duplicates.get(row_id)) is not None
        }
        return decide(batch, decisions)
