"""Readers: records come out with stable ids; a broken file is reported, never crashes the job."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from weft.curate.read import read_file
from weft.curate.schema import KEPT, QUARANTINED, row_id
from weft.specs import InputSpec
from weft.storage import resolve


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def records(path: Path, spec: InputSpec, batch_size: int = 2) -> list[dict]:
    return pa.concat_tables(list(read_file(resolve(str(path)), spec, batch_size))).to_pylist()


WDS = InputSpec(uri="x", format="webdataset")


def test_webdataset_pairs_by_key_with_txt_or_json_caption(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    write_tar(
        shard,
        [
            ("a.jpg", b"A"),
            ("a.txt", b"cap a"),
            ("b.png", b"B"),
            ("b.json", json.dumps({"caption": "cap b"}).encode()),
            ("c.txt", b"no image"),
        ],
    )
    rows = records(shard, WDS)
    assert [(r["key"], r["text_bytes"], r["image"]) for r in rows] == [
        ("a", b"cap a", b"A"),
        ("b", b"cap b", b"B"),
        ("c", b"no image", None),
    ]
    assert rows[0]["id"] == row_id(str(shard), "a")
    assert rows[0]["source_uri"] == str(shard)
    assert [r["status"] for r in rows] == [KEPT, KEPT, QUARANTINED]
    assert rows[2]["reason"] == "missing_image"


def test_truncated_tar_keeps_records_before_the_break_and_reports_the_file(tmp_path: Path) -> None:
    shard = tmp_path / "cut.tar"
    data = write_tar(shard, [(f"{k}.{e}", b"x" * 600) for k in "abc" for e in ("jpg", "txt")])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        cut = tar.getmembers()[-1].offset_data + 10
    shard.write_bytes(data[:cut])
    rows = records(shard, WDS)
    assert [r["key"] for r in rows if r["status"] == KEPT] == ["a", "b"]
    file_row = rows[-1]
    assert (file_row["key"], file_row["status"], file_row["reason"]) == (
        "",
        QUARANTINED,
        "file_truncated",
    )
    assert "after 2 records" in file_row["detail"]


def test_garbage_tar_is_reported_as_one_record(tmp_path: Path) -> None:
    shard = tmp_path / "junk.tar"
    shard.write_bytes(b"this is not a tar archive" * 100)
    rows = records(shard, WDS)
    assert len(rows) == 1
    assert rows[0]["reason"] == "file_truncated" or rows[0]["reason"] == "file_unreadable"
    assert rows[0]["source_uri"] == str(shard)


def test_parquet_with_the_wrong_schema_names_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"url": ["u"], "alt": ["a cat"]}), path)
    rows = records(path, InputSpec(uri="x", format="parquet", text_column="caption"))
    assert len(rows) == 1
    assert rows[0]["reason"] == "file_bad_schema"
    assert "'image', 'caption'" in rows[0]["detail"] and "has: url, alt" in rows[0]["detail"]


def test_parquet_rows_get_keys_from_position_or_the_key_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pq.write_table(
        pa.table(
            {"k": ["x", "y", "z"], "image": [b"1", b"2", None], "text": ["one", "two", "three"]}
        ),
        path,
    )
    by_position = records(path, InputSpec(uri="x", format="parquet"))
    assert [r["key"] for r in by_position] == ["000000000", "000000001", "000000002"]
    by_key = records(path, InputSpec(uri="x", format="parquet", key_column="k"))
    assert [(r["key"], r["text_bytes"], r["status"]) for r in by_key] == [
        ("x", b"one", KEPT),
        ("y", b"two", KEPT),
        ("z", b"three", QUARANTINED),
    ]


def test_not_a_parquet_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"PAR1 but not really")
    rows = records(path, InputSpec(uri="x", format="parquet"))
    assert [r["reason"] for r in rows] == ["file_unreadable"]


def test_jsonl_bad_lines_are_quarantined_with_their_line_number(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        b'{"text": "one"}\n{"text": "broken\n\n{"text": "tw\xff"}\n[1, 2]\n{"text": "three"}\n'
    )
    rows = records(path, InputSpec(uri="x", format="jsonl"))
    assert [(r["key"], r["status"], r["reason"]) for r in rows] == [
        ("000000001", KEPT, None),
        ("000000002", QUARANTINED, "bad_json"),
        ("000000004", QUARANTINED, "invalid_utf8"),
        ("000000005", QUARANTINED, "bad_json"),
        ("000000006", KEPT, None),
    ]
    assert "line 2" in rows[1]["detail"]


def test_every_record_of_a_file_comes_out_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(7)))
    tables = list(read_file(resolve(str(path)), InputSpec(uri="x", format="jsonl"), 3))
    assert [t.num_rows for t in tables] == [3, 3, 1]
