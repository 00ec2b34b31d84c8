"""Exact dedup: content hashes of normalised text and image bytes; one row per content is kept.

`ContentHash` hashes every kept row; `exact_keys` gives each its group key for the grouping
in `dedup.py`, which keeps the smallest (source_uri, key) of each group, so reruns keep the
same row.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft.curate.dedup import EXACT, KEYS, keys_table
from weft.curate.schema import active, kept_values, with_columns

Match = Literal["both", "text", "image"]


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


def exact_keys(batch: pa.Table, match: Match) -> pa.Table:
    """KEYS rows of the kept rows: `bucket` and `check` are the 128 bits of a hash of what
    `match` says must be identical. A text-only row has no image hash; under `image` it is
    matched by its text instead."""
    batch = batch.filter(active(batch))
    if batch.num_rows == 0:
        return KEYS.empty_table()
    text = pc.fill_null(batch["text_hash"], "")
    image = pc.fill_null(batch["image_hash"], "")
    if match == "text":
        key = text
    elif match == "image":
        key = pc.if_else(pc.equal(image, ""), pc.binary_join_element_wise("t", text, ":"), image)
    else:
        key = pc.binary_join_element_wise(text, image, "|")
    keys = key.to_pylist()
    digests = b"".join(hashlib.blake2b(k.encode(), digest_size=16).digest() for k in keys)
    halves = np.frombuffer(digests, np.int64).reshape(-1, 2)
    return keys_table(EXACT, halves[:, 0], halves[:, 1], batch)
