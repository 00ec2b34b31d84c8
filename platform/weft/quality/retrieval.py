"""`weft eval retrieval`: the gold queries run against a search index built by `weft index`,
with the registered CLIP that built it, through the same `SearchIndex` the search service
answers from. Precision@k and recall@k per query, for vector-only text search, the two
hybrids of BM25 and vector (weighted scores, reciprocal ranks), and image→image search. With
a captioner, two more: the weighted hybrid's top candidates reranked by it
(`weft.serve.rerank`), and the caption-first baseline, BM25 over the captions it writes for
every indexed image (no CLIP, no human caption).

Relevance is counted in items (`weft.data.items`: a character's drawings in either style are
one item). Recall@k is the share of a query's relevant items in the index found in its top k.
An image query is the indexed image of the query's first relevant item (its stored vector);
the relevant items are the query's others, and hits of its own item are left out of its top k
(a query with no other item in the index has no image query).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weft import storage
from weft.data.items import item_of
from weft.models import inference
from weft.quality.gold import GoldQuery, GoldSet
from weft.registry.artifacts import fetch_predictor
from weft.registry.versions import ModelVersion, resolve
from weft.serve import lexical
from weft.serve.fusion import Fusion
from weft.serve.lexical import Analyzers, Lexical
from weft.serve.rerank import DEPTH, SHARE, rerank
from weft.serve.search import MANIFEST, Hit, SearchIndex, index_location
from weft.specs import SpecError, StorageSpec

MODES = ("vector", "hybrid", "rrf", "reranked", "caption-first", "image")
# Hits an image query asks for beyond k: its own item's drawings are dropped.
OWN_DRAWINGS = 32


@dataclass(frozen=True)
class Scored:
    """One query's answer in one mode: its top k's items, and which of them are relevant."""

    query: GoldQuery
    mode: str
    found: list[str]  # the item of each hit, in rank order
    ids: list[str]  # each hit's row id (for its thumbnail)
    precision: float
    recall: float


def score(
    query: GoldQuery, mode: str, hits: Sequence[Hit], present: set[str], k: int, own: str = ""
) -> Scored:
    """Precision@k and recall@k of `hits` (the top k) against the query's relevant items that
    are `present` in the index, less `own` (an image query's own item)."""
    relevant = (set(query.items) & present) - {own}
    found = [item_of(h.key) for h in hits]
    right = [item for item in found if item in relevant]
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
    captioner: ModelVersion | None = None
    rerank_ms: float = math.nan  # mean time to rerank one query's candidates
    rerank_share: float = SHARE  # the captioner's share of the reranked order

    @property
    def modes(self) -> list[str]:
        """The modes scored, in `MODES` order."""
        return [m for m in MODES if any(s.mode == m for s in self.scored)]

    def of(self, mode: str, kind: str | None = None, half: str | None = None) -> list[Scored]:
        """The queries scored in `mode`, of one kind and half or all."""
        return [
            s
            for s in self.scored
            if s.mode == mode and kind in (None, s.query.kind) and half in (None, s.query.half)
        ]

    def mean(
        self, mode: str, measure: str, kind: str | None = None, half: str | None = None
    ) -> float:
        scored = self.of(mode, kind, half)
        return statistics.fmean(getattr(s, measure) for s in scored) if scored else math.nan


def run(
    gold: GoldSet,
    model: str,
    index_root: str,
    k: int,
    hybrid: float,
    workdir: Path,
    captioner: str | None = None,
    rerank_share: float = SHARE,
) -> RetrievalEval:
    """Every gold query in every mode against the index of `model` (name@alias or
    name/version), and with the registered `captioner` if given. The models, and an index on
    S3, are copied into `workdir`, which must outlive the result (its index serves the
    report's thumbnails)."""
    version = resolve(model)
    index, embedder = load_index(version, index_root, workdir)
    modes = _Modes(index, k, hybrid, rerank_share)
    captioner_version = None
    if captioner:
        captioner_version = resolve(captioner)
        writer, _, _ = fetch_predictor(
            captioner_version.uri, "captioner", StorageSpec(), workdir, inference.CaptionWriter
        )
        modes.with_captioner(writer, workdir / "caption-first")
    texts = embedder.embed_texts([q.text for q in gold.queries])
    scored = [s for q, v in zip(gold.queries, texts, strict=True) for s in modes.scored(q, v)]
    rerank_ms = 1e3 * statistics.fmean(modes.rerank_s) if modes.rerank_s else math.nan
    return RetrievalEval(version, scored, index, captioner_version, rerank_ms, rerank_share)


class _Modes:
    """One query's answer in each mode, scored."""

    def __init__(self, index: SearchIndex, k: int, hybrid: float, share: float) -> None:
        self.index, self.k, self.hybrid, self.share = index, k, hybrid, share
        self.first_row: dict[str, int] = {}  # an item's first row, for image queries
        for row, key in enumerate(index.keys):
            self.first_row.setdefault(item_of(key), row)
        self.present = set(self.first_row)
        self.writer: inference.CaptionWriter | None = None
        self.captioned: Lexical | None = None
        self.rerank_s: list[float] = []

    def with_captioner(self, writer: inference.CaptionWriter, workdir: Path) -> None:
        self.writer, self.captioned = writer, _captioned(self.index, writer, workdir)

    def scored(self, query: GoldQuery, vector: np.ndarray) -> list[Scored]:
        index, k = self.index, self.k
        answers = {"vector": index.search(vector, None, k)}
        for mode, fusion in (("hybrid", Fusion.WEIGHTED), ("rrf", Fusion.RRF)):
            answers[mode] = index.search(vector, query.text, k, hybrid=self.hybrid, fusion=fusion)
        if self.writer is not None and self.captioned is not None:
            answers["reranked"] = self._reranked(query, vector, self.writer)
            answers["caption-first"] = _by_captions(index, self.captioned, query.text, k)
        found = [score(query, mode, hits, self.present, k) for mode, hits in answers.items()]
        own = next((item for item in query.items if item in self.present), None)
        if own is not None and (set(query.items) & self.present) - {own}:  # others to find
            hits = index.search(index.vectors[self.first_row[own]], None, k + OWN_DRAWINGS)
            others = [h for h in hits if item_of(h.key) != own][:k]
            found.append(score(query, "image", others, self.present, k, own=own))
        return found

    def _reranked(
        self, query: GoldQuery, vector: np.ndarray, writer: inference.CaptionWriter
    ) -> list[Hit]:
        started = time.perf_counter()
        candidates = self.index.search(vector, query.text, DEPTH, hybrid=self.hybrid)
        images = [self.index.thumbnail(h.id) or b"" for h in candidates]
        likelihoods = writer.likelihood(images, query.text).tolist() if candidates else []
        best = rerank(candidates, likelihoods, self.k, self.share)
        self.rerank_s.append(time.perf_counter() - started)
        return [r.hit for r in best]


def _captioned(index: SearchIndex, writer: inference.CaptionWriter, path: Path) -> Lexical:
    """A BM25 index, row for row with `index`, of the caption `writer` gives each image (in
    English, as it was trained)."""
    first = np.unique(index.images, return_index=True)[1]  # one row per distinct image
    pictures = [index.thumbnail(index.ids[row]) or b"" for row in first]
    written = dict(
        zip(index.images[first].tolist(), writer.caption(pictures, beam_size=1), strict=True)
    )
    captions = [written[image] for image in index.images.tolist()]
    lexical.write(captions, ["en"] * len(captions), path)
    return Lexical(path, Analyzers.PER_LANGUAGE)


def _by_captions(index: SearchIndex, captioned: Lexical, text: str, k: int) -> list[Hit]:
    """The `k` images whose written captions best match `text` by BM25, one row per image."""
    found = captioned.search(text, k * index.copies, None)
    hits: list[Hit] = []
    seen: set[int] = set()
    for row, bm25 in sorted(found.items(), key=lambda item: -item[1]):
        if int(index.images[row]) not in seen and len(hits) < k:
            seen.add(int(index.images[row]))
            hits.append(index.hit(row, bm25, 0.0, bm25))
    return hits


def load_index(
    version: ModelVersion, root: str, tmp: Path
) -> tuple[SearchIndex, inference.Embedder]:
    """The index `weft index` built with a registered CLIP under `root`, and that CLIP."""
    location = index_location(root, version, StorageSpec())
    if not storage.exists(location.join(MANIFEST)):
        raise SpecError(f"index: none of {version} under {root}: run `weft index` first")
    folder = Path(location.path) if not location.is_s3 else tmp / "index"
    if location.is_s3:
        storage.copy_dir(location, storage.resolve(str(folder)))
    embedder, _, _ = fetch_predictor(version.uri, "model", StorageSpec(), tmp, inference.Embedder)
    return SearchIndex(folder), embedder
