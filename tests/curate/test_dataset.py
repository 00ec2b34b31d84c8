"""The curated dataset's reader, as people look at it: pages of each part's rows, one row
with its decision and its duplicates, a removed row's thumbnail, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weft.curate import dataset
from weft.specs import SpecError, StorageSpec

NONE = StorageSpec()


@pytest.fixture
def output(tmp_path: Path) -> str:
    """A curation output written by hand: 3 kept rows (one a text document), 3 removed
    (two duplicates of k1, one with a thumbnail), 1 quarantined."""
    for part in ("data", "removed", "quarantine"):
        (tmp_path / part).mkdir()
    pq.write_table(
        pa.table(
            {
                "id": ["k1", "k2", "k3"],
                "source_uri": ["/in/a.tar"] * 3,
                "key": ["a", "b", "c"],
                "ordinal": [0, 1, 2],
                "text": ["a red circle", "a blue square", "a document"],
                "image": [b"jpeg", b"png", None],
                "image_format": ["JPEG", "PNG", None],
            }
        ),
        tmp_path / "data" / "part-0.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "id": ["r1", "r2", "r3"],
                "source_uri": ["/in/a.tar", "/in/b.tar", "/in/b.tar"],
                "key": ["d", "e", "f"],
                "status": ["removed"] * 3,
                "stage": ["near_dedup", "exact_dedup", "langid"],
                "reason": ["near_duplicate", "exact_duplicate", "language_not_allowed"],
                "duplicate_of": ["k1", "k1", None],
                "similarity": [0.93, 1.0, None],
                "thumbnail": [b"thumb", None, None],
            }
        ),
        tmp_path / "removed" / "part-0.parquet",
    )
    pq.write_table(
        pa.table({"id": ["q1"], "source_uri": ["/in/c.tar"], "key": ["g"], "reason": ["x"]}),
        tmp_path / "quarantine" / "part-0.parquet",
    )
    (tmp_path / "report.json").write_text(json.dumps({"name": "hand", "counts": {"kept": 3}}))
    return str(tmp_path)


def test_a_page_of_rows_has_no_bytes_and_says_which_have_an_image(output: str) -> None:
    total, page = dataset.rows(output, NONE, "kept", offset=1, limit=5)
    assert total == 3
    assert [(r["id"], r["has_image"]) for r in page] == [("k2", True), ("k3", False)]
    assert not any("image" in r for r in page)
    total, page = dataset.rows(output, NONE, "removed", reason="exact_duplicate")
    assert (total, [r["id"] for r in page]) == (1, ["r2"])
    assert page[0]["has_image"] is False and "thumbnail" not in page[0]
    assert dataset.rows(output, NONE, "quarantined")[1][0]["has_image"] is False
    assert dataset.rows(output, NONE, "kept", offset=10) == (3, [])  # past the end
    assert dataset.rows(output, NONE, "kept", reason="near_duplicate") == (0, [])


def test_a_row_carries_its_decision_and_a_kept_row_its_duplicates_most_similar_first(
    output: str,
) -> None:
    kept = dataset.row(output, NONE, "k1")
    assert kept is not None and kept["status"] == "kept"
    assert [(d["id"], d["similarity"]) for d in kept["duplicates"]] == [("r2", 1.0), ("r1", 0.93)]
    removed = dataset.row(output, NONE, "r1")
    assert removed is not None and removed["status"] == "removed"
    assert (removed["duplicate_of"], removed["has_image"]) == ("k1", True)
    assert dataset.row(output, NONE, "nope") is None


def test_only_a_removed_row_with_a_thumbnail_gives_one(output: str) -> None:
    assert dataset.thumbnail(output, NONE, "r1") == b"thumb"
    assert dataset.thumbnail(output, NONE, "r2") is None
    assert dataset.thumbnail(output, NONE, "k1") is None


def test_the_report_is_read_and_a_missing_one_is_named(output: str, tmp_path: Path) -> None:
    assert dataset.report(output, NONE)["name"] == "hand"
    with pytest.raises(SpecError, match=r"report.json: no such report"):
        dataset.report(str(tmp_path / "elsewhere"), NONE)
