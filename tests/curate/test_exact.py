"""Exact dedup: one row per content is kept, always the same one; the rest point at it."""

from __future__ import annotations

import pyarrow as pa

from weft.curate.dedup import MarkDuplicates, exact_duplicates, pairs_in_block
from weft.curate.exact import exact_keys
from weft.curate.schema import KEPT, QUARANTINED, REMOVED, ROW_SCHEMA


def rows(*specs: tuple[str, str, str, str | None]) -> pa.Table:
    """(id, source_uri, text_hash, image_hash) → a ROW_SCHEMA table with every row kept."""
    return pa.Table.from_pylist(
        [
            {
                "id": i,
                "source_uri": src,
                "key": i,
                "text": "t",
                "text_hash": th,
                "image_hash": ih,
                "status": KEPT,
            }
            for i, src, th, ih in specs
        ],
        schema=ROW_SCHEMA,
    )


def duplicates(table: pa.Table, match: str = "both") -> pa.Table:
    return exact_duplicates(pairs_in_block(exact_keys(table, match)), match)  # type: ignore[arg-type]


def dup_map(table: pa.Table, match: str = "both") -> dict[str, str]:
    found = duplicates(table, match)
    return dict(zip(found["id"].to_pylist(), found["duplicate_of"].to_pylist(), strict=True))


def test_the_smallest_source_and_key_is_kept_whatever_the_row_order() -> None:
    specs = [
        ("c", "s3://b/2.tar", "T", "I"),
        ("a", "s3://b/1.tar", "T", "I"),
        ("b", "s3://b/1.tar", "T", "I"),
        ("d", "s3://b/1.tar", "U", "I"),
    ]
    expected = {"c": "a", "b": "a"}
    assert dup_map(rows(*specs)) == expected
    assert dup_map(rows(*reversed(specs))) == expected


def test_match_decides_what_must_be_identical() -> None:
    table = rows(("a", "s", "T", "I"), ("b", "s", "T", "J"), ("c", "s", "U", "I"))
    assert dup_map(table, "both") == {}
    assert dup_map(table, "text") == {"b": "a"}
    assert dup_map(table, "image") == {"c": "a"}


def test_text_only_rows_are_matched_by_text_under_every_rule() -> None:
    table = rows(("a", "s", "T", None), ("b", "s", "T", None), ("c", "s", "T", "I"))
    assert dup_map(table, "image") == {"b": "a"}
    assert dup_map(table, "both") == {"b": "a"}


def test_rows_already_decided_are_not_grouped() -> None:
    table = rows(("a", "s", "T", "I"), ("b", "s", "T", "I"))
    table = table.set_column(
        table.schema.get_field_index("status"), "status", pa.array([QUARANTINED, KEPT])
    )
    assert dup_map(table) == {}


def test_mark_duplicates_removes_with_duplicate_of() -> None:
    table = rows(("a", "s", "T", "I"), ("b", "s", "T", "I"))
    out = MarkDuplicates(duplicates(table))(table)
    assert out["status"].to_pylist() == [KEPT, REMOVED]
    assert out["duplicate_of"].to_pylist() == [None, "a"]
    assert out["reason"].to_pylist() == [None, "exact_duplicate"]
    assert out["detail"].to_pylist() == [None, "same both as a"]
    assert out["stage"].to_pylist() == [None, "exact_dedup"]
    assert out["similarity"].to_pylist() == [None, 1.0]
