"""Reads the search index that `weft index` (`weft.serve.index`) builds, and defines its format;
searches it with a query vector (a text's or an image's CLIP embedding) and, for a text query,
its words; filters applied before the top-k is cut; a hybrid of BM25 over the captions and the
vector score.

An index is a folder, at `index_location(...)`:

    manifest.json   the model (name, version), the dataset (URI, the version read, its
                    content hash and the one the model was trained on), the counts, the
                    ANN settings and when it was built: Serve pairs an index only with its
                    own version
    items/          Parquet (`items_schema`): id, caption, lang, nsfw_score and the nsfw flag
                    (score at or over the builder's threshold), source_uri, key, image_hash
                    (rows of one image, such as its captions in several languages, share
                    it), image_phash (curation's perceptual hash), vector, thumbnail
    vectors.faiss   an HNSW graph over the unit vectors (inner product = cosine)
    bm25/           a tantivy index over the captions, each analysed by its language
                    (`weft.serve.lexical`), each document holding its row

Rows are numbered in the order of `items/` (its files sorted by name), which both indexes
use.

Without filters the vector candidates come from the HNSW graph; with filters, from an exact
search over the rows that pass them (HNSW with a filter loses recall when the filter keeps
few rows), so a filter never returns fewer than `k` hits while `k` rows match it. Each hit's
score fuses both sides (`weft.serve.fusion`: weighted scores or reciprocal ranks) and carries
both parts. Rows of one image (its captions in several languages) are answered once, by the
best-scoring row; with `distinct`, so is a group of near-duplicate images (perceptual hashes
within curation's default `image_max_distance` bits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from weft import storage
from weft.curate.phash import hamming
from weft.curate.spec import NearDedupSpec
from weft.registry.versions import ModelVersion
from weft.serve.fusion import Fusion, fuse
from weft.serve.lexical import Analyzers, Lexical
from weft.specs import SpecError, StorageSpec

MANIFEST = "manifest.json"
ITEMS, ANN, BM25 = "items", "vectors.faiss", "bm25"

# Candidates gathered from each side before the hybrid score ranks them.
DEPTH = 64
# Images this many bits apart or fewer are near duplicates (`Filters.distinct`).
NEAR_BITS = NearDedupSpec().image_max_distance


@dataclass(frozen=True)
class Manifest:
    """What an index holds and which model version made its vectors."""

    model: str
    version: str
    dim: int
    count: int
    data: str
    content_hash: str
    hnsw_m: int
    ef_search: int
    seconds: float
    analyzers: Analyzers = Analyzers.PLAIN  # how bm25/ analyses captions (weft.serve.lexical)
    data_version: str = ""  # the curated version read (older indexes: unrecorded)
    trained_on: str = ""  # the content hash of the dataset the model was trained on
    built_at: str = ""

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        return cls.at(storage.resolve(str(directory)))

    @classmethod
    def at(cls, location: storage.Location) -> Manifest:
        """The manifest of the index at `location` (local or S3)."""
        try:
            fields = json.loads(storage.read_bytes(location.join(MANIFEST)))
            return cls(**fields | {"analyzers": Analyzers(fields.get("analyzers", "plain"))})
        except storage.StorageError as err:
            if err.missing:
                raise SpecError(f"{location.uri}: no search index here (weft index)") from None
            raise SpecError(f"{location.uri}: cannot read the index ({err})") from None
        except (ValueError, TypeError) as err:
            raise SpecError(f"{location.uri}: not a Weft search index ({err})") from None


def index_location(output: str, version: ModelVersion, spec: StorageSpec) -> storage.Location:
    """Where the index of `version` lives under `output`."""
    return storage.resolve(output, spec).join(version.name, f"v{version.version}")


def items_schema(dim: int) -> pa.Schema:
    """The columns of `items/`, with `dim`-wide vectors."""
    return pa.schema(
        [
            ("id", pa.string()),
            ("caption", pa.string()),
            ("lang", pa.string()),
            ("nsfw_score", pa.float32()),
            ("nsfw", pa.bool_()),
            ("source_uri", pa.string()),
            ("key", pa.string()),
            ("image_hash", pa.string()),
            ("image_phash", pa.int64()),
            ("vector", pa.list_(pa.float32(), dim)),
            ("thumbnail", pa.binary()),
        ]
    )


# An item as its lineage starts from: the index's row, without vector and thumbnail.
ITEM_COLUMNS = ["id", "caption", "lang", "nsfw", "source_uri", "key"]


def find_item(location: storage.Location, item: str) -> dict[str, Any] | None:
    """The row of `item` in the index at `location` (local or S3), if it holds it."""
    with storage.storage_errors(location.uri):
        items = pads.dataset(location.join(ITEMS).path, filesystem=location.fs, format="parquet")
        columns = [*ITEM_COLUMNS, *(c for c in ("image_hash",) if c in items.schema.names)]
        found = items.to_table(columns=columns, filter=pc.field("id") == item).to_pylist()
    return found[0] if found else None


def read_items(folder: Path, columns: list[str]) -> pa.Table:
    """`columns` of the index's items, in row order."""
    files = sorted(str(p) for p in (folder / ITEMS).glob("*.parquet"))
    return pads.dataset(files, format="parquet").to_table(columns=columns)


@dataclass(frozen=True)
class Filters:
    lang: str | None = None
    nsfw: bool | None = None
    source: str | None = None  # a prefix of the source URI
    distinct: bool = False  # near-duplicate images answered once


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    vector_score: float
    bm25_score: float  # normalised: the query's best BM25 match scores 1
    caption: str
    lang: str | None
    nsfw: bool
    source_uri: str
    key: str


class SearchIndex:
    """An index folder loaded for queries: vectors, HNSW graph, BM25 index, item metadata."""

    def __init__(self, folder: Path) -> None:
        self.manifest = Manifest.read(folder)
        columns = ["id", "caption", "lang", "nsfw", "source_uri", "key", "vector", "thumbnail"]
        held = pads.dataset(str(folder / ITEMS), format="parquet").schema.names
        optional = [c for c in ("image_hash", "image_phash") if c in held]  # older indexes lack
        items = read_items(folder, [*columns, *optional])
        dim = self.manifest.dim
        flat = items["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        self.vectors = flat.reshape(-1, dim).astype(np.float32)
        self.ids: list[str] = items["id"].to_pylist()
        self.captions: list[str] = items["caption"].to_pylist()
        self.langs = np.array(items["lang"].to_pylist(), dtype=object)
        self.nsfw = items["nsfw"].to_numpy(zero_copy_only=False).astype(bool)
        self.sources = np.array(items["source_uri"].to_pylist(), dtype=object)
        self.keys: list[str] = items["key"].to_pylist()
        self.thumbnails = items["thumbnail"]
        images = items["image_hash"] if "image_hash" in held else items["id"]
        self.image_hashes: list[str | None] = (
            images.to_pylist() if "image_hash" in held else [None] * len(self.ids)
        )
        self.phashes = (
            items["image_phash"].to_numpy(zero_copy_only=False) if "image_phash" in held else None
        )
        self.images = np.unique(images.to_numpy(zero_copy_only=False), return_inverse=True)[1]
        self.copies = int(np.bincount(self.images).max()) if len(self.images) else 1
        self.row_of = {item: row for row, item in enumerate(self.ids)}
        self.ann = faiss.read_index(str(folder / ANN))
        faiss.ParameterSpace().set_index_parameter(
            self.ann, "efSearch", max(self.manifest.ef_search, DEPTH)
        )
        self.bm25 = Lexical(folder / BM25, self.manifest.analyzers)

    def __len__(self) -> int:
        return len(self.ids)

    def item(self, item: str) -> dict[str, Any] | None:
        """The row of `item` (`ITEM_COLUMNS` and its image hash), if the index holds it."""
        row = self.row_of.get(item)
        if row is None:
            return None
        hit = self.hit(row, 0.0, 0.0, 0.0)
        return {c: getattr(hit, c) for c in ITEM_COLUMNS} | {"image_hash": self.image_hashes[row]}

    def thumbnail(self, item: str) -> bytes | None:
        """The PNG thumbnail of the item with id `item`, if the index holds it."""
        row = self.row_of.get(item)
        return None if row is None else self.thumbnails[row].as_py()

    def search(
        self,
        vector: np.ndarray,
        text: str | None,
        k: int,
        filters: Filters = Filters(),
        hybrid: float = 0.0,
        fusion: Fusion = Fusion.WEIGHTED,
    ) -> list[Hit]:
        """The `k` best images whose rows pass `filters`, by the hybrid score (`fusion`:
        weighted scores or reciprocal ranks, BM25's share `hybrid`); an image with several
        rows (captions) is answered once, by its best row."""
        allowed = self._allowed(filters)
        depth = max(DEPTH, 4 * k) * self.copies
        candidates = set(self._nearest(vector, depth, allowed))
        lexical = self.bm25.search(text, depth, allowed) if text and hybrid > 0 else {}
        rows = np.array(sorted(candidates | set(lexical)), dtype=np.int64)
        if not len(rows):
            return []
        cosine = self.vectors[rows] @ vector.astype(np.float32)
        top = max(lexical.values(), default=0.0) or 1.0
        bm25 = np.array([lexical.get(int(r), 0.0) / top for r in rows])
        answered, score = fuse(self.images[rows], cosine, bm25, hybrid, fusion)
        if filters.distinct:
            answered, score = self._distinct(rows, answered, score, k)
        return [
            self.hit(int(rows[i]), s, cosine[i], bm25[i])
            for i, s in zip(answered[:k], score[:k], strict=True)
        ]

    def _distinct(
        self, rows: np.ndarray, answered: np.ndarray, score: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first `k` answers none of which is a near duplicate of a better one (an
        index without perceptual hashes: every answer, as it has no way to tell)."""
        if self.phashes is None:
            return answered, score
        chosen: list[int] = []
        for i in range(len(answered)):
            phash = self.phashes[rows[answered[i]]]
            picked = self.phashes[rows[answered[chosen]]]
            if not (hamming(np.full(len(picked), phash), picked) <= NEAR_BITS).any():
                chosen.append(i)
                if len(chosen) == k:
                    break
        return answered[chosen], score[chosen]

    def _allowed(self, filters: Filters) -> np.ndarray | None:
        """The rows that pass the filters (None: every row)."""
        mask = np.ones(len(self.ids), bool)
        if filters.lang is not None:
            mask &= self.langs == filters.lang
        if filters.nsfw is not None:
            mask &= self.nsfw == filters.nsfw
        if filters.source is not None:
            prefix = filters.source
            mask &= np.fromiter((s.startswith(prefix) for s in self.sources), bool, len(mask))
        return None if mask.all() else np.flatnonzero(mask)

    def _nearest(self, vector: np.ndarray, depth: int, allowed: np.ndarray | None) -> list[int]:
        if allowed is None:
            _, found = self.ann.search(vector[None, :].astype(np.float32), depth)
            return [int(r) for r in found[0] if r >= 0]
        if len(allowed) <= depth:
            return [int(r) for r in allowed]
        scores = self.vectors[allowed] @ vector.astype(np.float32)
        best = np.argpartition(-scores, depth)[:depth]
        return [int(r) for r in allowed[best]]

    def hit(self, row: int, score: float, cosine: float, bm25: float) -> Hit:
        """Row `row` as an answer with its scores."""
        lang = self.langs[row]
        return Hit(
            id=self.ids[row],
            score=float(score),
            vector_score=float(cosine),
            bm25_score=float(bm25),
            caption=self.captions[row] or "",
            lang=None if lang is None else str(lang),
            nsfw=bool(self.nsfw[row]),
            source_uri=str(self.sources[row]),
            key=self.keys[row],
        )
