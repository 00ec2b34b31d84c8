"""How a hybrid search ranks images from its two sides: the cosine of each candidate row's
image to the query vector, and the BM25 score of its caption for the query's words.

- `weighted`: `(1 - h) * cosine + h * bm25 / best bm25`, per row. Raw scores mix: a cosine
  no better than chance can outweigh the only caption that matches.
- `rrf` (reciprocal rank fusion, Cormack et al. 2009): each side ranks the candidate images
  by their best row, and an image scores `(1 - h) / (K + vector rank) + h / (K + BM25 rank)`,
  the BM25 term only for images whose captions match. Ranks do not care how the scores are
  spread, so a first-place BM25 match stays near the top whatever the cosines.

An image with several rows (captions in several languages) is answered once, by its best
row: the highest fused score, then BM25, then cosine.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

K = 60  # RRF's constant: how much the first few ranks count more than the rest


class Fusion(StrEnum):
    WEIGHTED = "weighted"
    RRF = "rrf"


def fuse(
    images: np.ndarray, cosine: np.ndarray, bm25: np.ndarray, hybrid: float, fusion: Fusion
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate rows to answer, one per image, best first, and their fused scores.
    `images` numbers each row's image; `bm25` is in [0, 1], 0 where the caption does not
    match; `hybrid` is BM25's share."""
    if fusion is Fusion.WEIGHTED:
        score = (1 - hybrid) * cosine + hybrid * bm25
    else:
        _, image = np.unique(images, return_inverse=True)
        best_cosine = _best_per(image, cosine)
        best_bm25 = _best_per(image, bm25)
        lexical = np.where(best_bm25 > 0, hybrid / (K + ranks(best_bm25)), 0.0)
        score = ((1 - hybrid) / (K + ranks(best_cosine)) + lexical)[image]
    order = np.lexsort((-cosine, -bm25, -score))  # the last key sorts first
    first = np.unique(images[order], return_index=True)[1]
    answered = order[np.sort(first)]
    return answered, score[answered]


def _best_per(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    best = np.full(int(group.max()) + 1, -np.inf)
    np.maximum.at(best, group, values)
    return best


def ranks(values: np.ndarray) -> np.ndarray:
    """1 for the highest value, 2 for the next, ... (ties in order of position)."""
    out = np.empty(len(values))
    out[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return out
