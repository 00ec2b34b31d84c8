"""Reads the curated dataset: the Parquet rows under `data/` of a curation output's published
version (`publish.published`), streamed by Ray Data or whole in memory, which of them came
from under given sources, and the content hash its report records; and, for people looking
at what curation did, its report, pages of each part's rows (kept, removed, quarantined),
any one row with its decision and its duplicates, and a removed row's thumbnail.

A version's folder is itself a dataset URI (it holds no `_PUBLISHED`): `version_uri` names
the one published now, so a reader can keep reading it while a later run publishes another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import ray
from ray.data import Dataset

from weft import storage
from weft.cluster import DATA_CPUS
from weft.curate.publish import published
from weft.curate.schema import KEPT, QUARANTINED, REMOVED, THUMBNAIL
from weft.sources import ItemSource
from weft.specs import SpecError, StorageSpec

# Small blocks stream to the reader as they are made, so a training epoch's first batch comes
# soon after it starts (Ray Data's default gathers a whole read task's output, 128 MiB).
READ_ROWS = 128
BLOCK_BYTES = 1 << 20
# Each decision's folder in a curation output.
PARTS: Final = {KEPT: "data", REMOVED: "removed", QUARANTINED: "quarantine"}
# What a page of rows leaves out: bytes, and the near-dedup internals.
BYTES: Final = {"image", THUMBNAIL, "image_thumb", "minhash"}


def under(uris: list[str], prefixes: list[str]) -> np.ndarray:
    """Which of `uris` lie under one of `prefixes` (resolved URIs of files or folders)."""
    folders = tuple(p.rstrip("/") + "/" for p in prefixes)
    return np.array([u in prefixes or u.startswith(folders) for u in uris], dtype=bool)


def _files(uri: str, spec: StorageSpec) -> list[storage.Location]:
    files = storage.list_files(published(storage.resolve(uri, spec)).join("data"), (".parquet",))
    if not files:
        raise SpecError(f"data: {uri} holds no curated Parquet files")
    return files


def _read(loc: storage.Location, columns: list[str]) -> Iterator[pa.Table]:
    with storage.storage_errors(loc.uri):
        yield from (
            pa.Table.from_batches([b])
            for b in pq.ParquetFile(loc.path, filesystem=loc.fs).iter_batches(
                batch_size=READ_ROWS, columns=columns
            )
        )


def curated(uri: str, spec: StorageSpec, columns: list[str]) -> Dataset:
    """`columns` of the curated dataset at `uri`, streamed in small blocks by tasks of Ray
    Data's CPU share (Ray Data's own Parquet reader lists files in a whole-CPU task)."""
    files = _files(uri, spec)
    ds = ray.data.read_datasource(
        ItemSource("CuratedParquet", files, partial(_read, columns=columns)),
        override_num_blocks=len(files),
        num_cpus=DATA_CPUS,
    )
    ds.context.target_max_block_size = BLOCK_BYTES  # this dataset's own copy of the context
    return ds


def curated_table(uri: str, spec: StorageSpec, columns: list[str]) -> pa.Table:
    """`columns` of the curated dataset at `uri`, read whole into memory (small corpora)."""
    files = _files(uri, spec)
    with storage.storage_errors(uri):
        return pa.concat_tables(
            pq.read_table(f.path, columns=columns, filesystem=f.fs) for f in files
        )


def content_hash(uri: str, spec: StorageSpec) -> str:
    """The curated dataset's content hash, from its report ("unknown" if it cannot be read)."""
    try:
        report = published(storage.resolve(uri, spec)).join("report.json")
        return str(json.loads(storage.read_bytes(report))["counts"]["content_hash"])
    except (storage.StorageError, KeyError, ValueError):
        return "unknown"


def version_uri(uri: str, spec: StorageSpec) -> str:
    """The URI of the version of the curation output at `uri` that is published now."""
    return published(storage.resolve(uri, spec)).uri


def report(uri: str, spec: StorageSpec) -> dict[str, Any]:
    """The curation report (`report.json`) of the dataset at `uri`."""
    where = published(storage.resolve(uri, spec)).join("report.json")
    try:
        return dict(json.loads(storage.read_bytes(where)))
    except storage.StorageError as err:
        why = "no such report" if err.missing else "it cannot be read"
        raise SpecError(f"data: {where.uri}: {why}") from None


def _part(uri: str, spec: StorageSpec, status: str) -> pads.Dataset | None:
    loc = published(storage.resolve(uri, spec)).join(PARTS[status])
    if not storage.exists(loc):
        return None
    with storage.storage_errors(loc.uri):
        return pads.dataset(loc.path, filesystem=loc.fs, format="parquet")


def _columns(schema: pa.Schema) -> list[str]:
    """A part's columns to read for people: no bytes but a removed row's small thumbnail."""
    return [name for name in schema.names if name not in BYTES or name == THUMBNAIL]


def rows(
    uri: str,
    spec: StorageSpec,
    status: str,
    offset: int = 0,
    limit: int = 50,
    reason: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """A page of the rows that curation gave `status` (optionally only for `reason`), without
    their bytes, each with `has_image`: how many there are, and the page."""
    part = _part(uri, spec, status)
    if part is None or (reason is not None and "reason" not in part.schema.names):
        return 0, []  # no such part, or a reason asked of kept rows, which have none
    where = None if reason is None else pc.field("reason") == reason
    with storage.storage_errors(uri):
        ids = part.to_table(columns=["id"], filter=where)["id"].combine_chunks()
        wanted = ids.slice(offset, limit)
        if len(wanted) == 0:
            return len(ids), []
        page = part.to_table(columns=_columns(part.schema), filter=pc.field("id").isin(wanted))
    order = {row_id: i for i, row_id in enumerate(wanted.to_pylist())}
    found = sorted(_plain(page, status), key=lambda r: order[r["id"]])
    return len(ids), found


def row(uri: str, spec: StorageSpec, row_id: str) -> dict[str, Any] | None:
    """One row of any part, with its decision (`status`), without bytes, if the dataset holds
    it; a kept row also lists the duplicates removed in its favour (`duplicates`)."""
    for status in PARTS:
        part = _part(uri, spec, status)
        if part is None:
            continue
        with storage.storage_errors(uri):
            found = part.to_table(columns=_columns(part.schema), filter=pc.field("id") == row_id)
        if found.num_rows:
            (one,) = _plain(found, status)
            one["status"] = status
            if status == KEPT:
                one["duplicates"] = duplicates_of(uri, spec, row_id)
            return one
    return None


def duplicates_of(uri: str, spec: StorageSpec, row_id: str) -> list[dict[str, Any]]:
    """The rows removed as duplicates of the kept row `row_id`: id, source, key, stage,
    similarity."""
    part = _part(uri, spec, REMOVED)
    if part is None:
        return []
    columns = ["id", "source_uri", "key", "stage", "reason", "similarity"]
    with storage.storage_errors(uri):
        found = part.to_table(columns=columns, filter=pc.field("duplicate_of") == row_id)
    return sorted(found.to_pylist(), key=lambda r: -(r["similarity"] or 0.0))


def thumbnail(uri: str, spec: StorageSpec, row_id: str) -> bytes | None:
    """The thumbnail a removed row keeps of its image, if it has one."""
    part = _part(uri, spec, REMOVED)
    if part is None or THUMBNAIL not in part.schema.names:
        return None
    with storage.storage_errors(uri):
        found = part.to_table(columns=[THUMBNAIL], filter=pc.field("id") == row_id)
    return found[THUMBNAIL][0].as_py() if found.num_rows else None


def _plain(table: pa.Table, status: str) -> list[dict[str, Any]]:
    """Rows of one part as dicts without bytes, each saying whether it has an image to show:
    a kept row's (decoded when curated), a removed row's thumbnail; a quarantined row's
    image is not kept."""
    shown = {KEPT: "image_format", REMOVED: THUMBNAIL}.get(status, "")
    has = (
        table[shown].is_valid().to_pylist()
        if shown in table.column_names
        else [False] * table.num_rows
    )
    out = table.drop_columns([c for c in (THUMBNAIL,) if c in table.column_names]).to_pylist()
    for one, image in zip(out, has, strict=True):
        one["has_image"] = image
    return out
