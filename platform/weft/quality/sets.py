"""The labelled rows `weft eval` measures on: a curated emoji split's image-text pairs, each
with its emoji, base emoji, subgroup and caption language, known from the record's key
(`<hex code points>_<language>`, as `weft data emoji` writes it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft import storage
from weft.curate.dataset import curated_table, under
from weft.data import emoji
from weft.specs import SpecError, StorageSpec

COLUMNS = ["key", "text", "image", "image_hash", "source_uri"]


@dataclass(frozen=True)
class Row:
    """One image-text pair of an evaluation split."""

    key: str
    text: str
    language: str
    image: bytes
    image_hash: str
    emoji: str
    base: str
    subgroup: str


def read_splits(data: str, folders: dict[str, str], spec: StorageSpec) -> dict[str, list[Row]]:
    """For each split named in `folders`, the image-text pairs of the curated corpus `data`
    that were read from under its folder; the corpus is read once."""
    table = curated_table(data, spec, COLUMNS)
    uris = table["source_uri"].to_pylist()
    pictured = pc.is_valid(table["image"]).to_numpy(zero_copy_only=False)
    subgroups = {e.chars: e.subgroup for e in emoji.catalogue()}
    splits = {}
    for split, folder in folders.items():
        picked = table.filter(pa.array(under(uris, [storage.resolve(folder, spec).uri]) & pictured))
        if not picked.num_rows:
            raise SpecError(f"{folder}: no curated image-text pairs of {data} were read from there")
        splits[split] = _rows(picked, subgroups)
    return splits


def _rows(table: pa.Table, subgroups: dict[str, str]) -> list[Row]:
    rows = []
    for record in table.to_pylist():
        chars, language = emoji.emoji_of(record["key"])
        rows.append(
            Row(
                key=record["key"],
                text=record["text"],
                language=language,
                image=record["image"],
                image_hash=record["image_hash"],
                emoji=chars,
                base=emoji.base_of(chars),
                subgroup=subgroups.get(chars, ""),
            )
        )
    return rows


def images_once(rows: list[Row]) -> list[Row]:
    """One row per distinct image (captions in several languages share one), in first-seen order."""
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(row.image_hash, row)
    return list(seen.values())


def same_base(queries: list[Row], items: list[Row]) -> np.ndarray:
    """(queries, items) booleans: the item shows the query's emoji or a variant of its base."""
    bases = np.array([i.base for i in items])
    return np.array([bases == q.base for q in queries])
