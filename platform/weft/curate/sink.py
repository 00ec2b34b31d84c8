"""The run's output parts, written in one pass over the final rows.

`PartsSink` is a Ray Data datasink: each write task splits its blocks by decision into the
parts (`data/`, `removed/`, `quarantine/`; a dry run's `decisions/`), streams each part
into one Parquet file of its own, and returns what the report needs from those rows: their
summaries (`report.summarise_block`) and the rows that stand for input files not read
whole. The filtered rows are never held whole: the ingest's copy is the only one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import WriteResult

from weft import storage
from weft.curate.read import FILE_REASONS
from weft.curate.report import summarise_block
from weft.curate.schema import THUMBNAIL
from weft.thumbnails import thumbnail

if TYPE_CHECKING:
    from ray.data._internal.execution.interfaces import TaskContext

FILE_ERROR_COLUMNS = ["source_uri", "reason", "detail"]
# The longest side of a removed row's thumbnail.
THUMBNAIL_SIDE = 96


class Part(NamedTuple):
    """A folder of the output: the rows with `status` (every row if None), in `columns`, and
    with `thumbnails` a thumbnail of each image they still hold."""

    name: str
    status: str | None
    columns: list[str]
    thumbnails: bool = False


class Written(NamedTuple):
    """What one write task saw: its blocks' summaries, and its rows of unreadable files."""

    summaries: pa.Table
    file_errors: pa.Table


class PartsSink(Datasink[Written]):
    """Writes each part of the rows under `version`, `rows_per_file` rows or more per write
    task and file (the task's share of a part, which may be fewer). A retried task rewrites
    its own files: their names hold the write's id and the task's index."""

    def __init__(self, version: storage.Location, parts: list[Part], rows_per_file: int) -> None:
        self.version = version
        self.parts = parts
        self.rows_per_file = rows_per_file
        self.write_id = uuid.uuid4().hex[:12]
        self.written: list[Written] = []

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_file

    def write(self, blocks: Iterable[Block], ctx: TaskContext) -> Written:
        writers: dict[str, pq.ParquetWriter] = {}
        summaries, errors = [], []
        try:
            for block in blocks:
                rows = BlockAccessor.for_block(block).to_arrow()
                summaries.append(summarise_block(rows))
                errors.append(file_error_rows(rows))
                for part in self.parts:
                    chosen = select(rows, part)
                    if chosen.num_rows == 0:
                        continue
                    if part.name not in writers:
                        writers[part.name] = self._open(part, chosen.schema, ctx.task_idx)
                    writers[part.name].write_table(chosen)
        finally:
            for writer in writers.values():
                writer.close()
        return Written(pa.concat_tables(summaries), pa.concat_tables(errors))

    def _open(self, part: Part, schema: pa.Schema, task: int) -> pq.ParquetWriter:
        loc = self.version.join(part.name, f"{self.write_id}-{task:06d}.parquet")
        with storage.storage_errors(loc.uri):
            if not loc.is_s3:
                loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
            return pq.ParquetWriter(loc.path, schema, filesystem=loc.fs)

    def on_write_complete(self, write_result: WriteResult[Written]) -> None:
        self.written = list(write_result.write_returns)


def select(rows: pa.Table, part: Part) -> pa.Table:
    """The rows of `part`, in its columns (and its thumbnails)."""
    if part.status is not None:
        rows = rows.filter(pc.equal(rows["status"], part.status))
    chosen = rows.select(part.columns)
    if not part.thumbnails:
        return chosen
    images = rows["image"].to_pylist()
    thumbs = [None if i is None else thumbnail(i, THUMBNAIL_SIDE) for i in images]
    return chosen.append_column(THUMBNAIL, pa.array(thumbs, pa.binary()))


def file_error_rows(rows: pa.Table) -> pa.Table:
    """The rows that stand for an input file not read whole (their reason is no record's)."""
    return rows.filter(pc.is_in(rows["reason"], pa.array(sorted(FILE_REASONS)))).select(
        FILE_ERROR_COLUMNS
    )
