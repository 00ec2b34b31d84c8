"""A list of files (or any items) as a Ray Data source: read tasks over groups of items, at
most one task per item, each calling one read function. Curation reads its inputs and
training its curated Parquet through it.

Unlike `ray.data.read_parquet`, there is no whole-CPU listing task: the caller lists the
files (failing fast, naming the URI), and a listing task could wait forever behind training
workers that hold every CPU of a small machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

T = TypeVar("T")


class ItemSource(Datasource, Generic[T]):
    """`read(item)` yields the tables of one item; Ray's progress bars show Read<name>."""

    def __init__(self, name: str, items: Sequence[T], read: Callable[[T], Iterator[pa.Table]]):
        super().__init__()
        self.name, self.items, self.read = name, list(items), read

    def get_name(self) -> str:
        return self.name

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        tasks = max(1, min(parallelism, len(self.items)))
        groups = [self.items[i::tasks] for i in range(tasks)]
        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [
            ReadTask(
                partial(_read_all, self.read, group),
                metadata,
                per_task_row_limit=per_task_row_limit,
            )
            for group in groups
        ]


def _read_all(read: Callable[[T], Iterator[pa.Table]], group: list[T]) -> Iterator[pa.Table]:
    for item in group:
        yield from read(item)
