"""Readers: one input file in, its records out as READ_SCHEMA batches, streamed.

Formats: WebDataset tar shards (`key.jpg|png|webp` + `key.txt|json`), Parquet with an
image-bytes and a text column, and JSONL text documents; `.gz` and `.zst` files are
decompressed as they stream. A record the reader cannot make sense of (a bad JSON line, a
malformed sidecar, a sample with a link or a repeated member, a record decompressing past
`max_record_bytes`) is emitted already quarantined. A file that cannot be read, breaks off
part way or decompresses past `max_file_bytes` adds one quarantined record whose reason is in
FILE_REASONS, naming the file and the error, after every record read before the break.
Nothing is lost silently, and no record is held past the limits, however it decompresses.

A record's id comes from its file and its ordinal there, so ids are unique whatever the keys
and the same on every run; `key` is the user's key, or the record's position where it has
none (or a null one). The store failing (unreachable, denied, the file gone) is no fault of
the data: it raises `StorageError` naming the file, unless the input has `allow_missing`.
"""

from __future__ import annotations

import io
import json
import tarfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from weft.curate.schema import KEPT, QUARANTINED, READ_SCHEMA, row_id
from weft.curate.spec import InputSpec
from weft.storage import Location, StorageError, describe_error, storage_errors

STAGE = "read"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "webdataset": (".tar", ".tar.gz", ".tgz"),
    "parquet": (".parquet",),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson"),
}
# The reasons of a whole-file record: no record of the data can have them.
FILE_REASONS: Final = frozenset(
    {"file_bad_schema", "file_too_large", "file_truncated", "file_unavailable", "file_unreadable"}
)
# Raw bytes read from the store at a time.
RAW_BUFFER: Final = 1 << 20
# Decompressed bytes a reader asks for at a time.
BLOCK: Final = 1 << 20
# Compressed bytes decompressed at a time: they expand to at most ~1 MiB of gzip (deflate
# tops out near 1:1032) or ~32 MiB of zstd (a 4-byte RLE block gives 128 KiB), so a bomb
# cannot blow up a single call.
FEED: Final = 1 << 10
# A batch is handed on at `batch_size` rows or this many bytes, whichever comes first.
BATCH_BYTES: Final = 64 << 20


class BadFile(Exception):
    """A whole input file is unusable (wrong schema, say); `reason` is the code reported."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _printable(text: str) -> str:
    """`text`, with what UTF-8 cannot hold (lone surrogates) written as escapes."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


@dataclass
class _Batcher:
    """Accumulates records of one file and hands them out as READ_SCHEMA tables."""

    uri: str
    size: int
    rows: list[dict[str, object]] = field(default_factory=list)
    count: int = 0
    nbytes: int = 0
    key_hashes: array[int] = field(default_factory=lambda: array("q"))

    def add(
        self,
        key: str,
        text: bytes | None,
        image: bytes | None,
        reason: str | None = None,
        detail: str | None = None,
    ) -> pa.Table | None:
        """One record, kept or (with a reason) quarantined; a full batch comes back."""
        self.key_hashes.append(hash(key))
        self._append(key, text, image, reason, detail)
        full = len(self.rows) >= self.size or self.nbytes >= BATCH_BYTES
        return self.flush() if full else None

    def add_pair(self, key: str, text: bytes | None, image: bytes | None) -> pa.Table | None:
        """An image-text record; one without its image is quarantined here."""
        if image is None:
            return self.add(key, text, None, "missing_image", "no image for this record")
        return self.add(key, text, image)

    def add_file_error(self, reason: str, detail: str) -> None:
        """The record of a file that broke off (or could not be read at all); the last one,
        handed on by the final `flush`."""
        self._append("", None, None, reason, f"{detail} (after {self.count} records)")

    def _append(
        self,
        key: str,
        text: bytes | None,
        image: bytes | None,
        reason: str | None,
        detail: str | None,
    ) -> None:
        self.rows.append(
            {
                "id": row_id(self.uri, self.count),
                "source_uri": self.uri,
                "key": _printable(key),
                "ordinal": self.count,
                "text_bytes": text,
                "image": image if reason is None else None,
                "status": KEPT if reason is None else QUARANTINED,
                "stage": None if reason is None else STAGE,
                "reason": reason,
                "detail": None if detail is None else _printable(detail),
                "duplicate_of": None,
                "similarity": None,
            }
        )
        self.count += 1
        self.nbytes += len(text or b"") + (len(image or b"") if reason is None else 0)

    def flush(self) -> pa.Table | None:
        if not self.rows:
            return None
        table = pa.Table.from_pylist(self.rows, schema=READ_SCHEMA)
        self.rows, self.nbytes = [], 0
        return table

    def repeated_keys(self) -> int:
        """Records whose key repeats an earlier record's."""
        hashes = np.frombuffer(self.key_hashes, np.int64)
        return len(hashes) - len(np.unique(hashes))


class _Source(io.RawIOBase):
    """The raw bytes of a file in the store: any failure to get them (the store unreachable,
    access denied, the file gone) is a StorageError naming the file, never bad content."""

    def __init__(self, loc: Location, random_access: bool = False) -> None:
        self.uri = loc.uri
        with storage_errors(loc.uri):
            self.file = (
                loc.fs.open_input_file(loc.path)
                if random_access
                else loc.fs.open_input_stream(loc.path, compression=None, buffer_size=RAW_BUFFER)
            )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self.file.seekable())

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        with storage_errors(self.uri):
            return int(self.file.readinto(buffer))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with storage_errors(self.uri):
            return int(self.file.seek(offset, whence))

    def tell(self) -> int:
        with storage_errors(self.uri):
            return int(self.file.tell())

    def close(self) -> None:
        self.file.close()
        super().close()


class _Decoder(Protocol):
    """A zlib or zstd decompressor object: one gzip member, one zstd frame."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, /) -> bytes: ...


class _Decompressed(io.RawIOBase):
    """A compressed stream of one member (frame) or several, decompressed as it is read,
    FEED bytes at a time. Its end inside a member raises EOFError, after every byte decoded
    before it."""

    def __init__(self, raw: io.RawIOBase, decoder: Callable[[], _Decoder]) -> None:
        self.raw, self.decoder = raw, decoder
        self.member = decoder()
        self.started = False  # input fed to the current member
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            data = self.raw.read(FEED)
            if not data:
                if self.started:
                    raise EOFError("the compressed stream ends part way")
                return 0
            self.pending = memoryview(self._decompress(data))
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            self.started = True
            out.append(self.member.decompress(data))
            if not self.member.eof:
                break
            data = self.member.unused_data
            self.member = self.decoder()
            self.started = False
        return b"".join(out)


class _Stream(io.RawIOBase):
    """The decompressed bytes of a file, at most `limit` of them. A break (the data ends part
    way or runs past the limit, the store fails) reads as the end of the stream, so a reader
    hands on every record before it: tarfile, say, would drop a buffer it was filling. The
    break is kept in `error`, for `_open` to raise."""

    def __init__(self, stream: io.RawIOBase, limit: int) -> None:
        self.stream, self.limit, self.total = stream, limit, 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        room = self.limit - self.total
        try:
            n = self.stream.readinto(memoryview(buffer)[: max(room, 1)]) or 0
            if room == 0 and n:
                raise BadFile("file_too_large", f"decompresses to more than {self.limit} bytes")
        except Exception as err:
            self.error = err
            return 0
        self.total += n
        return n


@contextmanager
def _open(loc: Location, spec: InputSpec) -> Iterator[_Stream]:
    """The bytes of a file, decompressed (`.gz`, `.tgz`, `.zst`) as they stream and capped at
    the input's `max_file_bytes`. The stream's break, if any, is raised at the end, in place of
    what it made the reader raise (tarfile's "unexpected end of data", say)."""
    with _Source(loc) as raw:
        inner: io.RawIOBase = raw
        if loc.path.endswith((".gz", ".tgz")):
            inner = _Decompressed(raw, partial(zlib.decompressobj, wbits=31))
        elif loc.path.endswith(".zst"):
            inner = _Decompressed(raw, zstandard.ZstdDecompressor().decompressobj)
        stream = _Stream(inner, spec.max_file_bytes)
        try:
            yield stream
        except Exception:
            if stream.error is None:
                raise
        if stream.error is not None:
            raise stream.error


def _member_kind(member: tarfile.TarInfo) -> str:
    return "symlink" if member.issym() else "hard link" if member.islnk() else "special file"


@dataclass
class _Sample:
    """The members of one WebDataset sample, or the first reason it cannot be used.

    A repeated member (the same key and extension twice in a row) quarantines its sample:
    which copy is meant cannot be told. A non-regular member (a link, a device) is not read.
    """

    key: str
    parts: dict[str, bytes] = field(default_factory=dict)
    size: int = 0
    problem: tuple[str, str] | None = None

    def add(self, member: tarfile.TarInfo, ext: str, tar: tarfile.TarFile, limit: int) -> None:
        if self.problem:
            return
        if not member.isfile():
            self.problem = (
                "unsupported_member",
                f"{member.name} is a {_member_kind(member)}, not a regular file",
            )
        elif ext in self.parts:
            self.problem = ("duplicate_member", f"{member.name} appears more than once")
        elif self.size + member.size > limit:
            self.problem = (
                "record_too_large",
                f"sample {self.key} holds more than {limit} bytes ({member.name}: "
                f"{member.size} bytes)",
            )
        else:
            self.size += member.size
            data = tar.extractfile(member)
            self.parts[ext] = data.read() if data else b""

    def emit(self, spec: InputSpec, out: _Batcher) -> pa.Table | None:
        if self.problem:
            return out.add(self.key, None, None, *self.problem)
        image = next((self.parts[e] for e in IMAGE_EXTENSIONS if e in self.parts), None)
        text = self.parts.get("txt")
        if text is None and "json" in self.parts:
            try:
                caption = json.loads(self.parts["json"]).get(spec.json_text_field)
            except (ValueError, AttributeError, RecursionError) as err:
                return out.add(self.key, None, None, "bad_sidecar", f"{self.key}.json: {err}")
            try:
                text = caption.encode() if isinstance(caption, str) else None
            except UnicodeEncodeError as err:
                return out.add(self.key, None, None, "invalid_utf8", f"{self.key}.json: {err}")
        return out.add_pair(self.key, text, image)


def _webdataset(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    with _open(loc, spec) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        sample: _Sample | None = None
        for member in tar:
            if member.isdir():
                continue
            directory, _, base = member.name.rpartition("/")
            stem, _, ext = base.partition(".")
            key = f"{directory}/{stem}" if directory else stem
            if sample is None or key != sample.key:
                if sample is not None:
                    yield sample.emit(spec, out)
                sample = _Sample(key)
            sample.add(member, ext.lower(), tar, spec.max_record_bytes)
        if sample is not None and stream.error is None:  # else its rest may be past the break
            yield sample.emit(spec, out)


def _binary(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Image bytes from a binary column, or the `bytes` field of a {bytes, path} struct."""
    if pa.types.is_struct(column.type) and column.type.get_field_index("bytes") >= 0:
        column = pa.chunked_array(
            [c.field("bytes") for c in column.chunks], column.type["bytes"].type
        )
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise BadFile("file_bad_schema", f"column '{name}' is {column.type}, expected binary")
    return column.cast(pa.large_binary())


def _key(value: object) -> str | None:
    """A user's key as text; None for a null one (the record's position stands in)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _check_parquet_schema(pf: pq.ParquetFile, spec: InputSpec, wanted: list[str]) -> None:
    names = pf.schema_arrow.names
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


def _row_groups_within(pf: pq.ParquetFile, limit: int) -> int:
    """How many leading row groups fit in `limit` bytes, uncompressed (from the metadata)."""
    total = 0
    for i in range(pf.metadata.num_row_groups):
        total += pf.metadata.row_group(i).total_byte_size
        if total > limit:
            return i
    return int(pf.metadata.num_row_groups)


def _parquet(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    with _Source(loc, random_access=True) as source:
        try:
            pf = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as err:
            raise BadFile("file_unreadable", f"not a Parquet file: {err}") from err
        wanted = [
            spec.image_column,
            spec.text_column,
            *([spec.key_column] if spec.key_column else []),
        ]
        _check_parquet_schema(pf, spec, wanted)
        within = _row_groups_within(pf, spec.max_file_bytes)
        position = 0
        for batch in pf.iter_batches(batch_size=out.size, columns=wanted, row_groups=range(within)):
            table = pa.Table.from_batches([batch])
            images = _binary(table[spec.image_column], spec.image_column).to_pylist()
            texts = table[spec.text_column].cast(pa.large_binary()).to_pylist()
            keys = (
                [_key(k) for k in table[spec.key_column].to_pylist()]
                if spec.key_column
                else [None] * table.num_rows
            )
            for key, text, image in zip(keys, texts, images, strict=True):
                yield _parquet_row(key, f"{position:09d}", text, image, spec, out)
                position += 1
        if within < pf.metadata.num_row_groups:
            raise BadFile(
                "file_too_large",
                f"row group {within} takes it past {spec.max_file_bytes} bytes uncompressed",
            )


def _parquet_row(
    key: str | None,
    position: str,
    text: bytes | None,
    image: bytes | None,
    spec: InputSpec,
    out: _Batcher,
) -> pa.Table | None:
    key = position if key is None else key
    size = len(text or b"") + len(image or b"")
    if size > spec.max_record_bytes:
        return out.add(key, None, None, "record_too_large", f"row {position}: {size} bytes")
    return out.add_pair(key, text, image)


def _jsonl(loc: Location, spec: InputSpec, out: _Batcher) -> Iterator[pa.Table | None]:
    with _open(loc, spec) as stream:
        for number, line in enumerate(_lines(stream, spec.max_record_bytes), start=1):
            if line is None:
                yield out.add(
                    f"{number:09d}",
                    None,
                    None,
                    "record_too_large",
                    f"line {number}: longer than {spec.max_record_bytes} bytes",
                )
            elif line.strip():
                yield _document(number, line, spec, out)


def _document(number: int, line: bytes, spec: InputSpec, out: _Batcher) -> pa.Table | None:
    """One JSONL line as a record: quarantined, with its line number, when it is broken."""
    position = f"{number:09d}"
    try:
        doc = json.loads(line)
    except UnicodeDecodeError as err:
        return out.add(position, None, None, "invalid_utf8", f"line {number}: {err}")
    except (ValueError, RecursionError) as err:
        return out.add(position, None, None, "bad_json", f"line {number}: {err}")
    if not isinstance(doc, dict):
        return out.add(position, None, None, "bad_json", f"line {number}: not an object")
    key = _key(doc.get(spec.key_column)) if spec.key_column else None
    key = position if key is None else key
    text = doc.get(spec.text_column)
    try:
        encoded = text.encode() if isinstance(text, str) else None
    except UnicodeEncodeError as err:  # a lone surrogate, escaped in the JSON
        return out.add(key, None, None, "invalid_utf8", f"line {number}: {err}")
    return out.add(key, encoded, None)


def _lines(stream: _Stream, limit: int) -> Iterator[bytes | None]:
    """The lines of `stream`, without their newline; None for a line longer than `limit`
    bytes, whose rest is skipped as it streams: no line is held past the limit. The piece of
    a line the stream broke off in is no line."""
    head = bytearray()  # the start of the line the last block ended in
    skipping = False  # that line is over the limit
    while block := stream.read(BLOCK):
        *lines, tail = block.split(b"\n")
        for line in lines:
            too_long = skipping or len(head) + len(line) > limit
            yield None if too_long else bytes(head + line) if head else line
            head.clear()
            skipping = False
        if not skipping:
            head += tail
            if len(head) > limit:
                head.clear()
                skipping = True
    if (skipping or head) and stream.error is None:
        yield None if skipping else bytes(head)


_READERS = {"webdataset": _webdataset, "parquet": _parquet, "jsonl": _jsonl}


def read_file(
    loc: Location,
    spec: InputSpec,
    batch_size: int,
    on_repeated_keys: Callable[[int], None] | None = None,
) -> Iterator[pa.Table]:
    """Every record of one input file, in READ_SCHEMA batches. Bad content never raises;
    the store failing raises StorageError, unless the input has `allow_missing`.

    `on_repeated_keys`, if given, hears how many records repeat an earlier record's key, at
    the end of a file with any.
    """
    out = _Batcher(loc.uri, batch_size)
    try:
        for table in _READERS[spec.format](loc, spec, out):
            if table is not None:
                yield table
    except StorageError as err:
        if not spec.allow_missing:
            raise
        out.add_file_error("file_unavailable", str(err))
    except BadFile as err:
        out.add_file_error(err.reason, str(err))
    except (tarfile.TarError, EOFError) as err:
        out.add_file_error("file_truncated", str(err))
    except (OSError, pa.ArrowException, ValueError, zlib.error, zstandard.ZstdError) as err:
        out.add_file_error("file_unreadable", describe_error(err))
    if (table := out.flush()) is not None:
        yield table
    if on_repeated_keys and (repeats := out.repeated_keys()):
        on_repeated_keys(repeats)
