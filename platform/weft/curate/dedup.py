"""Exact and near duplicates: found in one grouping on Ray Data, removed in one pass.

Every kept row becomes a few narrow KEYS rows: one for its exact content (kind EXACT, a
128-bit id of the dedup key in `bucket` and `check`, from `exact.exact_keys`) and one per
LSH band (kind NEAR, from `minhash.band_keys`). The pipeline hash-partitions them by
`bucket`, so every member of a group lands in one block, where `pairs_in_block` turns each
group into EDGES: an exact group points every copy at its first row, a band bucket gives its
candidate pairs. In the driver, `exact_duplicates` reads the exact edges as they are; the
near edges between rows that survive them are verified and clustered (`minhash.clusters`).
`MarkDuplicates` removes the rows of the resulting DUPLICATES table.

The first row of a group is its smallest (source_uri, key, id) (keys may repeat, ids do
not), so reruns keep the same row.
"""

from __future__ import annotations

from itertools import pairwise
from typing import ClassVar, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft.curate.schema import REMOVED, Decision, active, decide

EXACT: Final = 0
NEAR: Final = 1
EXACT_STAGE: Final = "exact_dedup"
NEAR_STAGE: Final = "near_dedup"
REASONS: Final = {EXACT_STAGE: "exact_duplicate", NEAR_STAGE: "near_duplicate"}
# A band bucket of up to this many rows gives all its pairs; a larger one a chain.
MAX_BUCKET: Final = 64

KEYS = pa.schema(
    [
        ("kind", pa.int8()),
        ("bucket", pa.int64()),
        ("check", pa.int64()),
        ("id", pa.string()),
        ("source_uri", pa.string()),
        ("key", pa.string()),
    ]
)
EDGES = pa.schema([("kind", pa.int8()), ("a", pa.string()), ("b", pa.string())])
DUPLICATES = pa.schema(
    [
        ("id", pa.string()),
        ("duplicate_of", pa.string()),
        ("similarity", pa.float64()),
        ("detail", pa.string()),
        ("stage", pa.string()),
    ]
)


def keys_table(kind: int, bucket: np.ndarray, check: np.ndarray, names: pa.Table) -> pa.Table:
    """KEYS rows of one kind: `names` holds the (id, source_uri, key) of each row."""
    return pa.table(
        {
            "kind": pa.array(np.full(len(bucket), kind, np.int8)),
            "bucket": pa.array(bucket, pa.int64()),
            "check": pa.array(check, pa.int64()),
            "id": names["id"],
            "source_uri": names["source_uri"],
            "key": names["key"],
        },
        schema=KEYS,
    )


def partition_keys(keys: pa.Table, parts: int) -> list[pa.Table]:
    """KEYS rows split into `parts` tables by `bucket`, so that every row of a group lands
    in the same one (the buckets are uniform 64-bit hashes already)."""
    if parts == 1:
        return [keys]
    part = keys["bucket"].to_numpy().view(np.uint64) % np.uint64(parts)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(parts + 1, dtype=np.uint64)).tolist()
    keys = keys.take(order)
    return [keys.slice(lo, hi - lo) for lo, hi in pairwise(bounds)]


def pairs_in_block(block: pa.Table) -> pa.Table:
    """EDGES (kind, a, b), a after b in (source_uri, key, id) order, of every group in `block`.

    `block` must hold every row of each group it contains (a hash-partitioned block). An
    exact group gives (copy, first row) for each copy. A band bucket of up to MAX_BUCKET rows
    gives all its pairs, so verification can pick the right partner; a larger one
    (boilerplate) gives the chain of neighbours, linear in its size.
    """
    if block.num_rows == 0:
        return EDGES.empty_table()
    block = block.sort_by(
        [(c, "ascending") for c in ("kind", "bucket", "check", "source_uri", "key", "id")]
    )
    kind = block["kind"].to_numpy()
    group = np.column_stack([kind, block["bucket"].to_numpy(), block["check"].to_numpy()])
    first = np.r_[True, (group[1:] != group[:-1]).any(axis=1)]
    starts = np.flatnonzero(first)
    ids = block["id"].to_numpy(zero_copy_only=False)
    copies = ~first & (kind == EXACT)
    a = [ids[copies]]
    b = [ids[starts[np.cumsum(first) - 1]][copies]]
    ends = np.r_[starts[1:], len(ids)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - start < 2 or kind[start] == EXACT:
            continue
        if end - start <= MAX_BUCKET:
            later, earlier = np.triu_indices(end - start, k=1)[::-1]
        else:
            later, earlier = np.arange(1, end - start), np.arange(end - start - 1)
        a.append(ids[start + later])
        b.append(ids[start + earlier])
    a_ids, b_ids = np.concatenate(a), np.concatenate(b)
    kinds = np.r_[np.full(copies.sum(), EXACT), np.full(len(a_ids) - copies.sum(), NEAR)]
    edges = pa.table({"kind": kinds.astype(np.int8), "a": a_ids, "b": b_ids}, schema=EDGES)
    edges = edges.filter(pc.not_equal(edges["a"], edges["b"]))
    return edges.group_by(["kind", "a", "b"]).aggregate([])


def first_copies(batch: pa.Table, exact: pa.Table) -> pa.Table:
    """The rows of `batch` that may survive exact dedup, given their exact KEYS rows: of the
    rows sharing an exact key here, only the first in (source_uri, key, id) order, the order
    in which `pairs_in_block` picks a group's kept row. The others are removed as copies
    whatever the rest of the data holds, so their LSH bands would only add candidates to
    drop: a file of N identical texts gave N x bands band keys and candidate pairs."""
    order = exact.sort_by([(c, "ascending") for c in ("source_uri", "key", "id")])
    firsts = order.group_by(["bucket", "check"], use_threads=False).aggregate([("id", "first")])
    return batch.filter(pc.is_in(batch["id"], value_set=firsts["id_first"]))


def exact_duplicates(edges: pa.Table, match: str) -> pa.Table:
    """DUPLICATES from the exact edges: each copy points at its group's first row."""
    exact = edges.filter(pc.equal(edges["kind"], EXACT))
    return pa.table(
        {
            "id": exact["a"],
            "duplicate_of": exact["b"],
            "similarity": np.ones(exact.num_rows),
            "detail": pc.binary_join_element_wise(f"same {match} as ", exact["b"], ""),
            "stage": pa.array([EXACT_STAGE] * exact.num_rows, pa.string()),
        },
        schema=DUPLICATES,
    )


def near_edges(edges: pa.Table, removed: pa.Array) -> pa.Table:
    """The distinct near (a, b) edges between rows not in `removed` (as exact copies: near
    dedup looks only at the rows exact dedup kept)."""
    near = edges.filter(pc.equal(edges["kind"], NEAR))
    gone = pc.or_(pc.is_in(near["a"], value_set=removed), pc.is_in(near["b"], value_set=removed))
    return near.filter(pc.invert(gone)).group_by(["a", "b"]).aggregate([])


def rows_with_ids(batch: pa.Table, ids: pa.Array, columns: list[str]) -> pa.Table:
    """The rows of `batch` whose id is in `ids` (the ends of candidate edges), in `columns`.

    Lives here, not in the pipeline, so the fresh workers that run it after the shuffle
    import only this module.
    """
    return batch.filter(pc.is_in(batch["id"], value_set=ids)).select(columns)


class MarkDuplicates:
    """Stage: remove the kept rows named in a DUPLICATES table (held once per task), with the
    stage that found them, their kept row and their similarity to it."""

    name = "dedup"
    actors: ClassVar[int] = 0

    def __init__(self, duplicates: pa.Table) -> None:
        self.duplicates = duplicates

    def __call__(self, batch: pa.Table) -> pa.Table:
        found = pc.index_in(batch["id"], value_set=self.duplicates["id"])
        hit = pc.and_(active(batch), found.is_valid()).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(hit)
        if len(rows) == 0:
            return batch
        picked = self.duplicates.take(pc.take(found, pa.array(rows))).to_pylist()
        return decide(
            batch,
            {
                i: Decision(
                    REMOVED,
                    d["stage"],
                    REASONS[d["stage"]],
                    d["detail"],
                    d["duplicate_of"],
                    d["similarity"],
                )
                for i, d in zip(rows.tolist(), picked, strict=True)
            },
            keep_images=True,
        )
