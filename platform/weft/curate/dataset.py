"""Reads the curated dataset: the Parquet rows under `data/` of a curation output's published
version (`publish.published`), streamed by Ray Data or whole in memory, which of them came
from under given sources, and the content hash its report records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data import Dataset

from weft import storage
from weft.cluster import DATA_CPUS
from weft.curate.publish import published
from weft.sources import ItemSource
from weft.specs import SpecError, StorageSpec

# Small blocks stream to the reader as they are made, so a training epoch's first batch comes
# soon after it starts (Ray Data's default gathers a whole read task's output, 128 MiB).
READ_ROWS = 128
BLOCK_BYTES = 1 << 20


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
