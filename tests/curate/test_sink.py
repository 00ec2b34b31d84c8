"""One pass writes every part of the output, and tells the report what it wrote."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from weft import storage
from weft.curate.report import Counts
from weft.curate.schema import KEPT, QUARANTINED, REMOVED, ROW_SCHEMA, THUMBNAIL, with_columns
from weft.curate.sink import THUMBNAIL_SIDE, Part, PartsSink

PARTS = [
    Part("data", KEPT, ["id", "text"]),
    Part("removed", REMOVED, ["id", "status", "reason"]),
    Part("quarantine", QUARANTINED, ["id", "status", "reason", "detail"]),
]


def rows(*decisions: tuple[str, str, str | None]) -> pa.Table:
    """(id, status, reason) rows in the full row schema."""
    n = len(decisions)
    empty = pa.table({f.name: pa.nulls(n, f.type) for f in ROW_SCHEMA}, schema=ROW_SCHEMA)
    return with_columns(
        empty,
        id=[d[0] for d in decisions],
        source_uri=[f"file://in/{d[0]}" for d in decisions],
        status=[d[1] for d in decisions],
        reason=[d[2] for d in decisions],
        detail=["why" if d[2] else None for d in decisions],
        text=[f"text {d[0]}" for d in decisions],
        text_hash=[f"h{d[0]}" for d in decisions],
    )


def test_each_part_gets_its_rows_in_its_columns_and_the_report_its_summaries(
    tmp_path: Path,
) -> None:
    sink = PartsSink(storage.resolve(str(tmp_path)), PARTS, rows_per_file=10)
    blocks = [
        rows(("a", KEPT, None), ("b", REMOVED, "near_duplicate")),
        rows(("c", KEPT, None), ("f", QUARANTINED, "file_truncated")),
    ]
    written = sink.write(blocks, SimpleNamespace(task_idx=3))  # type: ignore[arg-type]
    data = pq.read_table(tmp_path / "data")
    assert data.column_names == ["id", "text"]
    assert sorted(data["id"].to_pylist()) == ["a", "c"]
    assert pq.read_table(tmp_path / "removed")["id"].to_pylist() == ["b"]
    assert pq.read_table(tmp_path / "quarantine")["reason"].to_pylist() == ["file_truncated"]
    assert [len(list((tmp_path / p.name).iterdir())) for p in PARTS] == [1, 1, 1]
    counts = Counts.from_summaries([written.summaries])
    assert (counts.input_rows, counts.kept) == (4, 2)
    assert written.file_errors.to_pylist() == [
        {"source_uri": "file://in/f", "reason": "file_truncated", "detail": "why"}
    ]


def test_a_retried_task_rewrites_its_own_files(tmp_path: Path) -> None:
    sink = PartsSink(storage.resolve(str(tmp_path)), PARTS, rows_per_file=10)
    for _ in range(2):
        sink.write([rows(("a", KEPT, None))], SimpleNamespace(task_idx=0))  # type: ignore[arg-type]
    assert pq.read_table(tmp_path / "data")["id"].to_pylist() == ["a"]
    assert not (tmp_path / "removed").exists()  # a part with no rows gets no file


def test_a_removed_row_keeps_a_small_thumbnail_of_its_image_and_no_image_bytes(
    tmp_path: Path,
) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(picture, format="JPEG")
    block = with_columns(
        rows(("kept", KEPT, None), ("dup", REMOVED, "near_duplicate"), ("no-image", REMOVED, "x")),
        image=[picture.getvalue(), picture.getvalue(), None],
    )
    parts = [Part("data", KEPT, ["id", "image"]), Part("removed", REMOVED, ["id"], thumbnails=True)]
    PartsSink(storage.resolve(str(tmp_path)), parts, 10).write(
        [block],
        SimpleNamespace(task_idx=0),  # type: ignore[arg-type]
    )
    removed = pq.read_table(tmp_path / "removed")
    assert removed.column_names == ["id", THUMBNAIL]
    thumb, missing = removed[THUMBNAIL].to_pylist()
    assert missing is None
    assert Image.open(io.BytesIO(thumb)).size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 2 // 3)
    assert pq.read_table(tmp_path / "data")["image"].to_pylist() == [picture.getvalue()]
