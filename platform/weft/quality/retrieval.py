"""`weft eval retrieval`: the gold queries run against a search index built by `weft index`,
with the registered CLIP that built it, through the same `SearchIndex` the search service
answers from. Precision@k and recall@k per query, for vector-only and hybrid (BM25 + vector)
text search, and for image→image search.

Relevance is counted in base emoji (variants are one). Recall@k is the share of a query's
relevant bases (those in the index) found in its top k. An image query is the picture of a
gold query's first emoji; the relevant items are the query's other emoji, and hits of the
query's own base are left out of its top k (a query with no other emoji has no image query).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from weft import storage
from weft.data.emoji import base_of, emoji_of, picture
from weft.models import inference
from weft.quality.gold import GoldQuery, GoldSet
from weft.registry.artifacts import fetch_predictor
from weft.registry.versions import ModelVersion, resolve
from weft.serve.search import MANIFEST, Hit, SearchIndex, index_location
from weft.specs import SpecError, StorageSpec

MODES = ("vector", "hybrid", "image")
# Hits an image query asks for beyond k: its own base's variants (skin tones) are dropped.
OWN_VARIANTS = 32


@dataclass(frozen=True)
class Scored:
    """One query's answer in one mode: its top k's bases, and which of them are relevant."""

    query: GoldQuery
    mode: str
    found: list[str]  # the base emoji of each hit, in rank order
    items: list[str]  # each hit's item id (for its thumbnail)
    precision: float
    recall: float


def score(query: GoldQuery, mode: str, hits: Sequence[Hit], present: set[str], k: int) -> Scored:
    """Precision@k and recall@k of `hits` (the top k) against the query's relevant bases that
    are `present` in the index; an image query's own base is not relevant to it."""
    relevant = query.bases & present
    if mode == "image":
        relevant -= {base_of(query.relevant[0])}
    found = [base_of(emoji_of(h.key)[0]) for h in hits]
    right = [b for b in found if b in relevant]
    return Scored(
        query,
        mode,
        found,
        [h.id for h in hits],
        precision=len(right) / k,
        recall=len(set(right)) / len(relevant) if relevant else 0.0,
    )


@dataclass(frozen=True)
class RetrievalEval:
    version: ModelVersion
    scored: list[Scored]
    index: SearchIndex

    def of(self, mode: str, kind: str | None = None) -> list[Scored]:
        """The queries scored in `mode`, of one kind or all."""
        return [s for s in self.scored if s.mode == mode and kind in (None, s.query.kind)]

    def mean(self, mode: str, measure: str, kind: str | None = None) -> float:
        scored = self.of(mode, kind)
        return statistics.fmean(getattr(s, measure) for s in scored) if scored else math.nan


def run(
    gold: GoldSet, model: str, index_root: str, k: int, hybrid: float, workdir: Path
) -> RetrievalEval:
    """Every gold query in every mode against the index of `model` (name@alias or
    name/version). The model, and an index on S3, are copied into `workdir`, which must
    outlive the result (its index serves the report's thumbnails)."""
    version = resolve(model)
    index, embedder = _load(version, index_root, workdir)
    present = {base_of(emoji_of(key)[0]) for key in index.keys}
    texts = embedder.embed_texts([q.text for q in gold.queries])
    images = embedder.embed_images([_picture(q) for q in gold.queries])
    scored = []
    for query, text_vector, image_vector in zip(gold.queries, texts, images, strict=True):
        scored += [
            score(query, "vector", index.search(text_vector, None, k), present, k),
            score(
                query, "hybrid", index.search(text_vector, query.text, k, hybrid=hybrid), present, k
            ),
        ]
        if query.bases & present - {base_of(query.relevant[0])}:  # others to find by image
            hits = index.search(image_vector, None, k + OWN_VARIANTS)
            scored.append(score(query, "image", _others(hits, query, k), present, k))
    return RetrievalEval(version, scored, index)


def _picture(query: GoldQuery) -> bytes:
    found = picture(query.relevant[0], 64)
    if found is None:
        raise SpecError(f"gold query {query.text!r}: the font draws no {query.relevant[0]}")
    return found


def _others(hits: list[Hit], query: GoldQuery, k: int) -> list[Hit]:
    """The top k of an image query's hits that are not its own base emoji."""
    own = base_of(query.relevant[0])
    return [h for h in hits if base_of(emoji_of(h.key)[0]) != own][:k]


def _load(version: ModelVersion, root: str, tmp: Path) -> tuple[SearchIndex, inference.Embedder]:
    location = index_location(root, version, StorageSpec())
    if not storage.exists(location.join(MANIFEST)):
        raise SpecError(f"index: none of {version} under {root}: run `weft index` first")
    folder = Path(location.path) if not location.is_s3 else tmp / "index"
    if location.is_s3:
        storage.copy_dir(location, storage.resolve(str(folder)))
    embedder, _, _ = fetch_predictor(version.uri, "model", StorageSpec(), tmp, inference.Embedder)
    return SearchIndex(folder), embedder
