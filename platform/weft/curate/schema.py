"""The canonical row every curation stage reads and writes, and how a stage records a decision.

A row is never dropped inside the pipeline: a stage that rejects it sets `status` to
`removed` (a policy decision, e.g. a duplicate) or `quarantined` (the record is broken),
with the stage's name, a reason code and a human-readable detail. The writer splits rows
by status at the very end, so the report can account for every input row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEPT: Final = "kept"
REMOVED: Final = "removed"
QUARANTINED: Final = "quarantined"

_DECISION_FIELDS = [
    pa.field("status", pa.string(), nullable=False),
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("duplicate_of", pa.string()),
    pa.field("similarity", pa.float64()),
]

# What the readers emit: raw text bytes (decoded and checked by `validate`) and image bytes.
READ_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("ordinal", pa.int64()),  # the record's number in its file, from 0
        pa.field("text_bytes", pa.binary()),
        pa.field("image", pa.binary()),
        *_DECISION_FIELDS,
    ]
)

# Every stage after `validate` reads and writes this schema.
ROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("ordinal", pa.int64()),
        pa.field("text", pa.string()),
        pa.field("image", pa.binary()),
        pa.field("image_format", pa.string()),
        pa.field("image_width", pa.int32()),
        pa.field("image_height", pa.int32()),
        pa.field("image_mode", pa.string()),
        pa.field("image_phash", pa.int64()),
        pa.field("image_thumb", pa.binary()),  # near-dedup's 32 x 32 canonical thumbnail
        pa.field("text_hash", pa.string()),
        pa.field("image_hash", pa.string()),
        pa.field("minhash", pa.binary()),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("nsfw_score", pa.float32()),
        pa.field("nsfw_labels", pa.list_(pa.string())),
        *_DECISION_FIELDS,
    ]
)
_INTERNAL = {"minhash", "image_thumb"}

# Columns of the curated output (`data/`): kept rows carry no decision.
CURATED_COLUMNS = [
    f.name for f in ROW_SCHEMA if f.name not in {d.name for d in _DECISION_FIELDS} | _INTERNAL
]
# Columns of `removed/` and `quarantine/`: everything but the image bytes, which a removed
# row keeps as a small thumbnail (`sink.py`) for the dataset explorer.
DECISION_COLUMNS = [f.name for f in ROW_SCHEMA if f.name not in {"image"} | _INTERNAL]
THUMBNAIL = "thumbnail"


def row_id(source_uri: str, ordinal: int) -> str:
    """Id of a record: from its file and its ordinal among the records read from it, so
    unique whatever the keys, and the same on every run over the same file."""
    return hashlib.blake2b(f"{source_uri}\0{ordinal}".encode(), digest_size=16).hexdigest()


def with_columns(batch: pa.Table, **columns: list[Any] | pa.Array | pa.ChunkedArray) -> pa.Table:
    """Replace whole columns by name, typed as ROW_SCHEMA types them."""
    for name, values in columns.items():
        field = ROW_SCHEMA.field(name)
        if not isinstance(values, pa.Array | pa.ChunkedArray):
            values = pa.array(values, field.type)
        batch = batch.set_column(batch.schema.get_field_index(name), field, values)
    return batch


def kept_values(batch: pa.Table, column: str) -> list[tuple[int, Any]]:
    """(row index, value) of every kept row whose `column` is set: what a stage looks at."""
    status = batch["status"].to_pylist()
    values = batch[column].to_pylist()
    return [(i, v) for i, (s, v) in enumerate(zip(status, values, strict=True)) if s == KEPT and v]


def active(batch: pa.Table) -> pa.ChunkedArray:
    """Mask of the rows still kept, the only rows a stage looks at."""
    return pc.equal(batch["status"], KEPT)


class Decision(NamedTuple):
    """What a stage decided about one row it did not keep."""

    status: str
    stage: str
    reason: str
    detail: str | None = None
    duplicate_of: str | None = None
    similarity: float | None = None


def decide(
    batch: pa.Table, decisions: Mapping[int, Decision], keep_images: bool = False
) -> pa.Table:
    """Record `decisions` (by row index into `batch`); a decided row's image bytes are dropped
    unless `keep_images` (a removed duplicate's or language's image, which the writer keeps as
    a thumbnail: never a quarantined or an unsafe one)."""
    if not decisions:
        return batch
    columns = {name: batch[name].to_pylist() for name in Decision._fields}
    for i, decision in decisions.items():
        for name, value in zip(Decision._fields, decision, strict=True):
            columns[name][i] = value
    batch = with_columns(batch, **columns)
    if keep_images:
        return batch
    dropped = np.zeros(batch.num_rows, dtype=bool)
    dropped[list(decisions)] = True
    return drop_images(batch, dropped)


def drop_images(batch: pa.Table, rows: np.ndarray) -> pa.Table:
    """`batch` without the image bytes of the rows where the mask `rows` is true."""
    if not rows.any():
        return batch
    image = pc.if_else(pa.array(rows), pa.nulls(batch.num_rows, pa.binary()), batch["image"])
    return with_columns(batch, image=image)
