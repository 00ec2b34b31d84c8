"""Cross-modal reranking: the first stage's best candidates reordered by how well each image
explains the query text, in the captioner's words (its mean log-probability per token of the
query given the image, `CaptionWriter.likelihood`).

The first stage compares one embedding of the query with one of each image; the captioner
reads the query word by word against the image's patches, which a single vector cannot. It
costs a forward pass per candidate, so it runs over the top `DEPTH` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weft.serve.search import Hit

DEPTH = 20  # candidates reranked per query


@dataclass(frozen=True)
class Reranked:
    hit: Hit
    likelihood: float  # mean log-probability per token of the query given the hit's image


def rerank(hits: Sequence[Hit], likelihoods: Sequence[float], k: int) -> list[Reranked]:
    """The `k` of `hits` whose images best explain the query (`likelihoods`, in the same
    order: `CaptionWriter.likelihood` of the query for each hit's image), best first; ties
    keep the first stage's order."""
    order = np.argsort(-np.asarray(likelihoods, float), kind="stable")[:k]
    return [Reranked(hits[i], float(likelihoods[i])) for i in order]
