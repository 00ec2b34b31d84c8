"""The one grouping that exact and near dedup share: groups → edges → removals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from weft.curate.dedup import (
    DUPLICATES,
    EXACT,
    KEYS,
    MAX_BUCKET,
    NEAR,
    MarkDuplicates,
    first_copies,
    near_edges,
    pairs_in_block,
    partition_keys,
)
from weft.curate.exact import ContentHash, exact_keys
from weft.curate.minhash import Signatures, band_keys, bands_and_rows
from weft.curate.schema import KEPT, QUARANTINED, READ_SCHEMA, ROW_SCHEMA, row_id
from weft.curate.spec import NearDedupSpec, ValidateSpec
from weft.curate.validate import Validate


def keys(*groups: tuple[int, int, list[str]]) -> pa.Table:
    """(kind, bucket, member ids) → a KEYS block."""
    rows = [(kind, bucket, i) for kind, bucket, members in groups for i in members]
    return pa.table(
        {
            "kind": pa.array([k for k, _, _ in rows], pa.int8()),
            "bucket": pa.array([b for _, b, _ in rows], pa.int64()),
            "check": pa.array([0] * len(rows), pa.int64()),
            "id": [i for _, _, i in rows],
            "source_uri": ["s"] * len(rows),
            "key": [i for _, _, i in rows],
        },
        schema=KEYS,
    )


def pairs(edges: pa.Table, kind: int) -> list[tuple[str, str]]:
    mine = edges.filter(pa.compute.equal(edges["kind"], kind))
    return sorted(zip(mine["a"].to_pylist(), mine["b"].to_pylist(), strict=True))


def test_small_buckets_give_every_pair_and_large_ones_a_chain() -> None:
    edges = pairs_in_block(keys((NEAR, 7, ["c", "a", "b"]), (NEAR, 8, ["d"])))
    assert pairs(edges, NEAR) == [("b", "a"), ("c", "a"), ("c", "b")]
    big = [f"x{i:03d}" for i in range(MAX_BUCKET + 1)]
    assert pairs_in_block(keys((NEAR, 1, big))).num_rows == MAX_BUCKET


def test_an_exact_group_points_every_copy_at_its_first_row() -> None:
    edges = pairs_in_block(keys((EXACT, 5, ["c", "a", "b"]), (EXACT, 6, ["d"])))
    assert pairs(edges, EXACT) == [("b", "a"), ("c", "a")]


def test_exact_and_near_groups_with_the_same_bucket_stay_apart() -> None:
    edges = pairs_in_block(keys((EXACT, 5, ["a", "b"]), (NEAR, 5, ["c", "d"])))
    assert pairs(edges, EXACT) == [("b", "a")]
    assert pairs(edges, NEAR) == [("d", "c")]


def test_partitions_keep_each_group_whole_and_give_the_same_edges() -> None:
    rng = np.random.default_rng(0)
    buckets = rng.integers(-(2**63), 2**63 - 1, size=40, dtype=np.int64).tolist()
    block = keys(
        *[
            (NEAR if i % 3 else EXACT, b, [f"{b}-{j}" for j in range(i % 4 + 1)])
            for i, b in enumerate(buckets)
        ]
    )
    parts = partition_keys(block, 3)
    assert len(parts) == 3 and sum(p.num_rows for p in parts) == block.num_rows
    where = {(b, i) for i, p in enumerate(parts) for b in p["bucket"].to_pylist()}
    assert len(where) == len(set(buckets))  # every bucket, every group, in one part alone
    split = pa.concat_tables([pairs_in_block(p) for p in parts])
    for kind in (EXACT, NEAR):
        assert pairs(split, kind) == pairs(pairs_in_block(block), kind)
    assert partition_keys(block, 1) == [block]


def test_near_edges_skip_exact_copies_and_repeats() -> None:
    edges = pa.table(
        {
            "kind": pa.array([NEAR, NEAR, NEAR], pa.int8()),
            "a": ["b", "b", "c"],
            "b": ["a", "a", "b"],
        }
    )
    assert near_edges(edges, pa.array(["c"])).to_pylist() == [{"a": "b", "b": "a"}]


def test_mark_duplicates_only_touches_rows_still_kept() -> None:
    table = pa.table(
        {f.name: pa.nulls(3, f.type) for f in ROW_SCHEMA}, schema=ROW_SCHEMA
    ).set_column(
        ROW_SCHEMA.get_field_index("status"), "status", pa.array([KEPT, QUARANTINED, KEPT])
    )
    table = table.set_column(ROW_SCHEMA.get_field_index("id"), "id", pa.array(["a", "b", "c"]))
    found = pa.table(
        {
            "id": ["b", "c"],
            "duplicate_of": ["a", "a"],
            "similarity": np.array([1.0, 0.9]),
            "detail": ["x", "y"],
            "stage": ["exact_dedup", "near_dedup"],
        },
        schema=DUPLICATES,
    )
    out = MarkDuplicates(found)(table)
    assert out["status"].to_pylist() == [KEPT, QUARANTINED, "removed"]
    assert out["reason"].to_pylist() == [None, None, "near_duplicate"]
    assert out["similarity"].to_pylist() == [None, None, 0.9]


def signed_rows(texts: list[str], spec: NearDedupSpec) -> pa.Table:
    """Documents as the dedup sees them: validated, hashed and signed."""
    n = len(texts)
    columns: dict[str, object] = {f.name: pa.nulls(n, f.type) for f in READ_SCHEMA}
    columns |= {
        "id": [row_id("docs.jsonl", i) for i in range(n)],
        "source_uri": ["docs.jsonl"] * n,
        "key": [f"{i:09d}" for i in range(n)],
        "text_bytes": [t.encode() for t in texts],
        "status": [KEPT] * n,
    }
    read = pa.table(columns, schema=READ_SCHEMA)
    return Signatures(spec)(ContentHash()(Validate(ValidateSpec())(read)))


def test_only_the_first_copy_of_an_exact_group_gets_band_keys() -> None:
    """A file of identical texts gave every copy all its LSH bands (N x bands keys, as many
    candidate pairs in the driver); the copies exact dedup removes anyway now give none."""
    spec = NearDedupSpec()
    text = "the same long line repeated many times in one compressed file of the corpus"
    texts = [text] * 50 + ["a different document that shares nothing with that one at all"]
    batch = signed_rows(texts, spec)
    exact = exact_keys(batch, "text")
    firsts = first_copies(batch, exact)
    assert firsts["id"].to_pylist() == [batch["id"][0].as_py(), batch["id"][50].as_py()]
    bands = bands_and_rows(spec)[0]
    assert band_keys(firsts, spec).num_rows == 2 * bands
