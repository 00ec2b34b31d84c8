"""Readers: one input file in, its records out as READ_SCHEMA batches, streamed.

Formats: WebDataset tar shards (`key.jpg|png|webp` + `key.txt|json`), Parquet with an
image-bytes and a text column, and JSONL text documents. A record the reader cannot make
sense of (a bad JSON line, a malformed sidecar) is emitted already quarantined; a file that
cannot be read, or breaks off part way, adds one quarantined record with `key` "" that names
the file and the error, after every record read before the break. Nothing is lost silently.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from weft.curate.schema import KEPT, QUARANTINED, READ_SCHEMA, row_id
from weft.specs import InputSpec
from weft.storage import Location, describe_error

STAGE = "read"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "webdataset": (".tar", ".tar.gz", ".tgz"),
    "parquet": (".parquet",),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson"),
}


class BadFile(Exception):
    """A whole input file is unusable (wrong schema, say); `reason` is the code reported."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class _Batcher:
    """Accumulates records of one file and hands them out as READ_SCHEMA tables."""

    uri: str
    size: int
    rows: list[dict[str, object]] = field(default_factory=list)
    count: int = 0

    def add(
        self,
        key: str,
        text: bytes | None,
        image: bytes | None,
        reason: str | None = None,
        detail: str | None = None,
    ) -> pa.Table | None:
        self.count += 1
        self.rows.append(
            {
                "id": row_id(self.uri, key),
                "source_uri": self.uri,
                "key": key,
                "text_bytes": text,
                "image": image if reason is None else None,
                "status": KEPT if reason is None else QUARANTINED,
                "stage": None if reason is None else STAGE,
                "reason": reason,
                "detail": detail,
                "duplicate_of": None,
                "similarity": None,
            }
        )
        return self.flush() if len(self.rows) >= self.size else None

    def add_pair(self, key: str, text: bytes | None, image: bytes | None) -> pa.Table | None:
        """An image-text record; one without its image is quarantined here."""
        if image is None:
            return self.add(key, text, None, "missing_image", "no image for this record")
        return self.add(key, text, image)

    def flush(self) -> pa.Table | None:
        if not self.rows:
            return None
        table = pa.Table.from_pylist(self.rows, schema=READ_SCHEMA)
        self.rows = []
        return table


def _webdataset(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    def emit(key: str, parts: dict[str, bytes]) -> pa.Table | None:
        image = next((parts[e] for e in IMAGE_EXTENSIONS if e in parts), None)
        text = parts.get("txt")
        if text is None and "json" in parts:
            try:
                caption = json.loads(parts["json"]).get(spec.json_text_field)
            except (ValueError, AttributeError) as err:
                return out.add(key, None, None, "bad_sidecar", f"{key}.json: {err}")
            text = caption.encode() if isinstance(caption, str) else None
        return out.add_pair(key, text, image)

    with loc.fs.open_input_stream(loc.path, compression="detect") as stream:
        key, parts = None, {}
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                directory, _, base = member.name.rpartition("/")
                stem, _, ext = base.partition(".")
                sample = f"{directory}/{stem}" if directory else stem
                if sample != key and key is not None:
                    yield emit(key, parts)
                    parts = {}
                key = sample
                data = tar.extractfile(member)
                parts[ext.lower()] = data.read() if data else b""
        if key is not None:
            yield emit(key, parts)


def _binary(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Image bytes from a binary column, or the `bytes` field of a {bytes, path} struct."""
    if pa.types.is_struct(column.type) and column.type.get_field_index("bytes") >= 0:
        column = pa.chunked_array(
            [c.field("bytes") for c in column.chunks], column.type["bytes"].type
        )
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise BadFile("file_bad_schema", f"column '{name}' is {column.type}, expected binary")
    return column.cast(pa.large_binary())


def _parquet(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    with loc.fs.open_input_file(loc.path) as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as err:
            raise BadFile("file_unreadable", f"not a Parquet file: {err}") from err
        names = pf.schema_arrow.names
        wanted = [
            spec.image_column,
            spec.text_column,
            *([spec.key_column] if spec.key_column else []),
        ]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise BadFile(
                "file_bad_schema",
                f"missing column(s) {', '.join(map(repr, missing))} (has: {', '.join(names)})",
            )
        text_type = pf.schema_arrow.field(spec.text_column).type
        if not (
            pa.types.is_string(text_type)
            or pa.types.is_large_string(text_type)
            or pa.types.is_binary(text_type)
            or pa.types.is_large_binary(text_type)
        ):
            raise BadFile(
                "file_bad_schema", f"column '{spec.text_column}' is {text_type}, expected text"
            )
        position = 0
        for batch in pf.iter_batches(batch_size=out.size, columns=wanted):
            table = pa.Table.from_batches([batch])
            images = _binary(table[spec.image_column], spec.image_column).to_pylist()
            texts = table[spec.text_column].cast(pa.large_binary()).to_pylist()
            keys = (
                [str(k) for k in table[spec.key_column].to_pylist()]
                if spec.key_column
                else [f"{position + i:09d}" for i in range(table.num_rows)]
            )
            position += table.num_rows
            for key, text, image in zip(keys, texts, images, strict=True):
                yield out.add_pair(key, text, image)


def _jsonl(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    with loc.fs.open_input_stream(loc.path, compression="detect") as stream:
        for number, line in enumerate(_lines(stream), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except UnicodeDecodeError as err:
                yield out.add(f"{number:09d}", None, None, "invalid_utf8", f"line {number}: {err}")
                continue
            except ValueError as err:
                yield out.add(f"{number:09d}", None, None, "bad_json", f"line {number}: {err}")
                continue
            if not isinstance(doc, dict):
                yield out.add(
                    f"{number:09d}", None, None, "bad_json", f"line {number}: not an object"
                )
                continue
            key = str(doc[spec.key_column]) if spec.key_column in doc else f"{number:09d}"
            text = doc.get(spec.text_column)
            yield out.add(key, text.encode() if isinstance(text, str) else None, None)


def _lines(stream: pa.NativeFile, chunk: int = 1 << 20) -> Iterator[bytes]:
    rest = b""
    while block := stream.read(chunk):
        *lines, rest = (rest + block).split(b"\n")
        yield from lines
    if rest:
        yield rest


_READERS = {"webdataset": _webdataset, "parquet": _parquet, "jsonl": _jsonl}


def read_file(loc: Location, spec: InputSpec, batch_size: int) -> Iterator[pa.Table]:
    """Every record of one input file, in READ_SCHEMA batches; never raises for bad input."""
    out = _Batcher(loc.uri, batch_size)
    try:
        for table in _READERS[spec.format](loc, spec, out):
            if table is not None:
                yield table
    except BadFile as err:
        out.add("", None, None, err.reason, str(err))
    except (tarfile.TarError, EOFError) as err:
        out.add("", None, None, "file_truncated", f"{err} (after {out.count} records)")
    except (OSError, pa.ArrowException, ValueError) as err:
        out.add(
            "", None, None, "file_unreadable", f"{describe_error(err)} (after {out.count} records)"
        )
    if (table := out.flush()) is not None:
        yield table
