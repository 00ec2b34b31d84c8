"""Readers: records come out with unique, stable ids; a broken file is reported, never crashes
the job; the store failing fails it, naming the file."""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
import tracemalloc
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from weft.curate.pipeline import list_inputs
from weft.curate.read import read_file
from weft.curate.schema import KEPT, QUARANTINED, row_id
from weft.curate.spec import CurateSpec, InputSpec
from weft.specs import SpecError, parse_spec
from weft.storage import Location, StorageError, resolve


def write_tar(path: Path, members: list[tuple[str, bytes] | tarfile.TarInfo]) -> bytes:
    """A tar of (name, data) regular files, and of other members given as TarInfo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


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
    assert [r["id"] for r in rows] == [row_id(str(shard), i) for i in range(3)]
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
    assert (file_row["status"], file_row["reason"]) == (QUARANTINED, "file_truncated")
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


JSONL = InputSpec(uri="x", format="jsonl")
KEYED = InputSpec(uri="x", format="jsonl", key_column="id")


def test_jsonl_lone_surrogate_quarantines_its_line_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "one"}\n'
        b'{"id": "b", "text": "half a pair \\ud800 here"}\n'
        b'{"id": "c\\udc00", "text": "two"}\n'
        b'{"id": "d", "text": "three"}\n'
    )
    rows = records(path, KEYED)
    assert [(r["key"], r["status"], r["reason"]) for r in rows] == [
        ("a", KEPT, None),
        ("b", QUARANTINED, "invalid_utf8"),
        ("c\\udc00", KEPT, None),  # a key is only a label: kept, escaped
        ("d", KEPT, None),
    ]
    assert "line 2" in rows[1]["detail"] and "surrogates" in rows[1]["detail"]


def pack(data: bytes, suffix: str) -> bytes:
    return gzip.compress(data) if suffix == ".gz" else zstandard.ZstdCompressor().compress(data)


def decodable(packed: bytes, suffix: str) -> bytes:
    """Every byte a decompressor gets out of a cut-off stream."""
    if suffix == ".gz":
        return zlib.decompressobj(wbits=31).decompress(packed)
    return zstandard.ZstdDecompressor().decompressobj().decompress(packed)


def documents(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdefghijklmnop", k=6)) for _ in range(400)]
    return b"".join(
        json.dumps({"text": " ".join(rng.choices(words, k=30))}).encode() + b"\n" for _ in range(n)
    )


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_compressed_jsonl_keeps_every_line_decoded_before_the_break(
    tmp_path: Path, suffix: str
) -> None:
    packed = pack(documents(1000), suffix)
    cut = packed[: len(packed) * 98 // 100]
    complete = decodable(cut, suffix).count(b"\n")
    assert 0 < complete < 1000  # zstd decodes whole blocks: fewer lines than gzip
    path = tmp_path / f"docs.jsonl{suffix}"
    path.write_bytes(cut)
    rows = records(path, JSONL, batch_size=100)
    assert [r["status"] for r in rows[:-1]] == [KEPT] * complete
    assert rows[-1]["reason"] == "file_truncated"
    assert f"after {complete} records" in rows[-1]["detail"]


def test_several_zstd_frames_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.zst"
    path.write_bytes(pack(documents(3, seed=1), ".zst") + pack(documents(4, seed=2), ".zst"))
    assert [r["status"] for r in records(path, JSONL)] == [KEPT] * 7


def test_corrupt_gzip_is_unreadable_content_not_a_store_failure(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 50)
    assert [r["reason"] for r in records(path, JSONL)] == ["file_unreadable"]


def test_webdataset_samples_of_links_are_quarantined_not_lost(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    write_tar(
        shard,
        [
            ("a.jpg", b"A"),
            ("a.txt", b"cap a"),
            link("b.jpg", "a.jpg"),
            link("b.txt", "a.txt"),
            link("c.jpg", "a.jpg", tarfile.LNKTYPE),
            link("c.txt", "a.txt", tarfile.LNKTYPE),
            ("d.jpg", b"D"),
            link("d.txt", "a.txt"),
            ("e.jpg", b"E"),
            ("e.txt", b"cap e"),
        ],
    )
    rows = records(shard, WDS)
    assert [(r["key"], r["reason"]) for r in rows] == [
        ("a", None),
        ("b", "unsupported_member"),
        ("c", "unsupported_member"),
        ("d", "unsupported_member"),
        ("e", None),
    ]
    assert "b.jpg is a symlink" in rows[1]["detail"]
    assert "c.jpg is a hard link" in rows[2]["detail"]


def test_webdataset_repeated_member_does_not_replace_the_first(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    write_tar(
        shard,
        [
            ("a.jpg", b"A"),
            ("a.txt", b"the caption"),
            ("a.txt", b"another caption"),
            ("b.jpg", b"B"),
            ("b.txt", b"cap b"),
        ],
    )
    rows = records(shard, WDS)
    assert [(r["key"], r["status"], r["reason"]) for r in rows] == [
        ("a", QUARANTINED, "duplicate_member"),
        ("b", KEPT, None),
    ]
    assert "a.txt appears more than once" in rows[0]["detail"]


def test_row_ids_are_unique_and_stable_whatever_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    docs = [
        {"id": "k", "text": "one"},
        {"id": "k", "text": "two"},
        {"id": 7, "text": "three"},
        {"id": "7", "text": "four"},
        {"id": None, "text": "five"},
        {"text": "six"},
        {"id": "", "text": "seven"},
    ]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    repeats: list[int] = []
    tables = read_file(resolve(str(path)), KEYED, 3, repeats.append)
    rows = pa.concat_tables(list(tables)).to_pylist()
    assert [r["key"] for r in rows] == ["k", "k", "7", "7", "000000005", "000000006", ""]
    assert [r["id"] for r in rows] == [row_id(str(path), i) for i in range(7)]
    assert [r["id"] for r in records(path, KEYED)] == [r["id"] for r in rows]  # rerun: same ids
    assert all(r["status"] == KEPT for r in rows)
    assert repeats == [2]


def test_parquet_null_and_repeated_keys_get_distinct_ids(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pq.write_table(
        pa.table({"k": ["x", None, "x"], "image": [b"1", b"2", b"3"], "text": ["a", "b", "c"]}),
        path,
    )
    repeats: list[int] = []
    tables = read_file(
        resolve(str(path)), InputSpec(uri="x", format="parquet", key_column="k"), 2, repeats.append
    )
    rows = pa.concat_tables(list(tables)).to_pylist()
    assert [r["key"] for r in rows] == ["x", "000000001", "x"]
    assert len({r["id"] for r in rows}) == 3
    assert repeats == [1]


def test_a_line_over_the_record_limit_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        json.dumps({"text": "short"})
        + "\n"
        + json.dumps({"text": "x" * 5000})
        + "\n"
        + json.dumps({"text": "after"})
        + "\n"
        + json.dumps({"text": "y" * 3000}),  # the last line, without its newline
    )
    spec = InputSpec(uri="x", format="jsonl", max_record_bytes=1000)
    rows = records(path, spec)
    assert [(r["key"], r["reason"]) for r in rows] == [
        ("000000001", None),
        ("000000002", "record_too_large"),
        ("000000003", None),
        ("000000004", "record_too_large"),
    ]
    assert rows[2]["text_bytes"] == b"after"


def test_a_gz_bomb_line_is_quarantined_at_bounded_memory(tmp_path: Path) -> None:
    """100 MB of one line in ~100 kB of gzip: skipped as it streams, never held whole."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"text": "')
        for _ in range(100):
            f.write(b"a" * (1 << 20))
        f.write(b'"}\n{"text": "after the bomb"}\n')
    assert path.stat().st_size < 1 << 20
    spec = InputSpec(uri="x", format="jsonl", max_record_bytes=1 << 20)
    tracemalloc.start()
    try:
        rows = records(path, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["reason"] for r in rows] == ["record_too_large", None]
    assert peak < 16 << 20, peak


def test_a_file_over_the_decompressed_limit_keeps_the_records_before_it(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.gz"
    data = documents(1000)
    path.write_bytes(gzip.compress(data))
    limit = 20_000
    spec = InputSpec(uri="x", format="jsonl", max_file_bytes=limit, max_record_bytes=1000)
    rows = records(path, spec, batch_size=64)
    complete = data[:limit].count(b"\n")
    assert [r["status"] for r in rows[:-1]] == [KEPT] * complete
    assert rows[-1]["reason"] == "file_too_large"
    assert f"more than {limit} bytes (after {complete} records)" in rows[-1]["detail"]


def test_a_webdataset_sample_over_the_record_limit_is_not_read(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    write_tar(
        shard, [("a.jpg", b"A" * 5000), ("a.txt", b"big"), ("b.jpg", b"B"), ("b.txt", b"small")]
    )
    rows = records(shard, InputSpec(uri="x", format="webdataset", max_record_bytes=1000))
    assert [(r["key"], r["reason"]) for r in rows] == [("a", "record_too_large"), ("b", None)]


def test_a_tar_over_the_file_limit_keeps_the_samples_before_it(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar.gz"
    data = write_tar(
        tmp_path / "plain.tar", [(f"{k}.{e}", b"x" * 900) for k in "abcdef" for e in ("jpg", "txt")]
    )
    shard.write_bytes(gzip.compress(data))
    # a sample is 3 kB of tar: the limit falls inside d.jpg
    spec = InputSpec(uri="x", format="webdataset", max_file_bytes=10_000, max_record_bytes=4000)
    rows = records(shard, spec)
    assert [r["key"] for r in rows[:-1]] == ["a", "b", "c"]
    assert rows[-1]["reason"] == "file_too_large"


def test_parquet_rows_and_row_groups_over_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    table = pa.table(
        {"image": [b"i" * 10, b"i" * 3000, b"i" * 10, b"i" * 10], "text": ["a", "b", "c", "d"]}
    )
    pq.write_table(table, path, row_group_size=2)
    spec = InputSpec(uri="x", format="parquet", max_record_bytes=1000)
    assert [r["reason"] for r in records(path, spec)] == [None, "record_too_large", None, None]
    size = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    spec = InputSpec(uri="x", format="parquet", max_record_bytes=1000, max_file_bytes=size)
    assert [r["reason"] for r in records(path, spec)] == [
        None,
        "record_too_large",
        "file_too_large",
    ]


class FailingStream:
    """A file whose store goes away after `good` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        self.data, self.good, self.pos = data, good, 0

    def readinto(self, buffer: memoryview) -> int:
        if self.pos >= self.good:
            raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation")
        n = min(len(buffer), self.good - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def close(self) -> None:
        pass


class FailingStore:
    def __init__(self, data: bytes, good: int) -> None:
        self.data, self.good = data, good

    def open_input_stream(self, path: str, **kwargs: object) -> FailingStream:
        if self.good < 0:
            raise FileNotFoundError(f"{path}: no such object")
        return FailingStream(self.data, self.good)


def failing_location(good: int) -> Location:
    """s3://b/docs.jsonl, whose store fails after `good` bytes (-1: the object is gone)."""
    return Location(FailingStore(documents(100), good), "b/docs.jsonl", "s3://b/docs.jsonl")


@pytest.mark.parametrize("good", [-1, 0, 5000])
def test_the_store_failing_fails_the_read_naming_the_file(good: int) -> None:
    loc = failing_location(good)
    with pytest.raises(StorageError, match=r"^s3://b/docs.jsonl: "):
        list(read_file(loc, JSONL, 8))


def test_with_allow_missing_a_store_failure_is_a_file_error() -> None:
    loc = failing_location(5000)
    spec = InputSpec(uri="x", format="jsonl", allow_missing=True)
    rows = pa.concat_tables(list(read_file(loc, spec, 8))).to_pylist()
    kept = documents(100)[:5000].count(b"\n")
    assert [r["status"] for r in rows[:-1]] == [KEPT] * kept
    assert rows[-1]["reason"] == "file_unavailable"
    assert "s3://b/docs.jsonl: cannot reach the S3 endpoint" in rows[-1]["detail"]


def test_a_file_two_inputs_match_is_refused(tmp_path: Path) -> None:
    """Read twice, its records would share their ids."""
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n')
    inputs = [
        {"uri": str(tmp_path), "format": "jsonl"},
        {"uri": f"{tmp_path}/*.jsonl", "format": "jsonl"},
    ]
    spec = parse_spec(CurateSpec, {"name": "t", "inputs": inputs, "output": str(tmp_path / "o")})
    with pytest.raises(SpecError, match=f"{tmp_path}/docs.jsonl is in input {tmp_path} and in"):
        list_inputs(spec)
