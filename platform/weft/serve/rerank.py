"""Cross-modal reranking: the first stage's best candidates reordered by how well each image
explains the query text, in the captioner's words (its mean log-probability per token of the
query given the image, `CaptionWriter.likelihood`).

The first stage compares one embedding of the query with one of each image; the captioner
reads the query word by word against the image's patches, which a single vector cannot. It
costs a forward pass per candidate, so it runs over the top `DEPTH` only.

The two orders are fused by reciprocal ranks (as `weft.serve.fusion`'s rrf): a candidate
scores `(1 - share) / (K + first-stage rank) + share / (K + likelihood rank)`; at share 1 the
likelihood's order alone decides, at 0 the first stage's stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weft.serve.fusion import K, ranks
from weft.serve.search import Hit

DEPTH = 20  # candidates reranked per query
# The likelihood's share of the fused order, chosen on the gold set's dev half: the drawings
# captioner loses precision at every share (0.741 unreranked; 0.2 → 0.727, 0.5 → 0.609, 1 →
# 0.391), least at 0.2.
SHARE = 0.2


@dataclass(frozen=True)
class Reranked:
    hit: Hit
    likelihood: float  # mean log-probability per token of the query given the hit's image


def rerank(
    hits: Sequence[Hit], likelihoods: Sequence[float], k: int, share: float = SHARE
) -> list[Reranked]:
    """The best `k` of `hits` (the first stage's order) by their fused rank with how well
    their images explain the query (`likelihoods`, in the same order:
    `CaptionWriter.likelihood` of the query for each hit's image); ties keep the first
    stage's order."""
    first = np.arange(1, len(hits) + 1)
    by_likelihood = ranks(np.asarray(likelihoods, float))
    fused = (1 - share) / (K + first) + share / (K + by_likelihood)
    order = np.argsort(-fused, kind="stable")[:k]
    return [Reranked(hits[i], float(likelihoods[i])) for i in order]
