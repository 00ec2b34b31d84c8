"""The labelled rows `weft eval` measures on: a curated split's image-text pairs, each with
what its key says (`weft.data.items`): the item it shows, the group it is held out with, its
caption language, and what a person would call it in English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft import storage
from weft.curate.dataset import curated_table, under
from weft.data.items import group_of, item_of, language_of, names_in_english, references
from weft.specs import SpecError, StorageSpec

COLUMNS = ["key", "text", "lang", "image", "image_hash", "source_uri"]


@dataclass(frozen=True)
class Row:
    """One image-text pair of an evaluation split."""

    key: str
    text: str
    language: str
    image: bytes
    image_hash: str
    item: str
    group: str
    references: tuple[str, ...]  # the drawing's English name first, then its keywords

    @property
    def english_name(self) -> str:
        """The drawing's English name (its caption, if it has none)."""
        return self.references[0] if self.references else self.text


def read_splits(
    data: str, folders: dict[str, list[str]], spec: StorageSpec
) -> dict[str, list[Row]]:
    """For each split named in `folders`, the image-text pairs of the curated corpus `data`
    that were read from under its folders; the corpus is read once."""
    table = curated_table(data, spec, COLUMNS)
    uris = table["source_uri"].to_pylist()
    pictured = pc.is_valid(table["image"]).to_numpy(zero_copy_only=False)
    splits = {}
    for split, folder in folders.items():
        prefixes = [storage.resolve(f, spec).uri for f in folder]
        picked = table.filter(pa.array(under(uris, prefixes) & pictured))
        if not picked.num_rows:
            where = ", ".join(folder)
            raise SpecError(f"{where}: no curated image-text pairs of {data} were read from there")
        splits[split] = _rows(picked.to_pylist())
    return splits


def _rows(records: list[dict[str, Any]]) -> list[Row]:
    languages = [language_of(str(r["key"])) or str(r["lang"] or "") for r in records]
    english: dict[str, str] = {}
    for record in records:
        if names_in_english(str(record["key"])):
            english.setdefault(record["image_hash"], str(record["text"]))
    return [
        Row(
            key=str(r["key"]),
            text=str(r["text"]),
            language=language,
            image=r["image"],
            image_hash=str(r["image_hash"]),
            item=item_of(str(r["key"])),
            group=group_of(str(r["key"])),
            references=tuple(references(str(r["key"]), english.get(r["image_hash"], ""))),
        )
        for r, language in zip(records, languages, strict=True)
    ]


def images_once(rows: list[Row]) -> list[Row]:
    """One row per distinct image (captions in several languages share one), in first-seen order."""
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(row.image_hash, row)
    return list(seen.values())


def same_item(queries: list[Row], items: list[Row]) -> np.ndarray:
    """(queries, items) booleans: the item shows what the query's row shows (for a
    character, its drawings in either style and its variants)."""
    shown = np.array([i.item for i in items])
    return np.array([shown == q.item for q in queries])
