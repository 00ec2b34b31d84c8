"""Calibration of near-duplicate detection on labelled pairs: precision and recall per
threshold, with the LSH bands x rows each threshold implies and its candidate curve.

Labelled pairs are JSONL lines `{"a": text, "b": text, "jaccard": float}` (the true
similarity; a pair is a duplicate at threshold t when jaccard >= t) or with `"duplicate":
bool` instead. `weft demo-data` writes `near_pairs.jsonl` of this form for its planted pairs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from weft.curate.minhash import bands_and_rows, exact_jaccard, signatures
from weft.specs import NearDedupSpec

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.5, 0.96, 0.05))


def candidate_probability(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Probability that a pair of Jaccard similarity s shares at least one LSH band."""
    return 1 - (1 - np.power(s, rows)) ** bands


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    jaccard: float | None
    duplicate: bool | None


def load_pairs(lines: Sequence[bytes | str]) -> list[Pair]:
    """Parse labelled pairs; a malformed line is an error naming its number."""
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            pairs.append(Pair(str(d["a"]), str(d["b"]), d.get("jaccard"), d.get("duplicate")))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"line {number}: expected {{a, b, jaccard|duplicate}}: {err}"
            ) from None
        if pairs[-1].jaccard is None and pairs[-1].duplicate is None:
            raise ValueError(f"line {number}: needs 'jaccard' or 'duplicate'")
    if not pairs:
        raise ValueError("no labelled pairs")
    return pairs


@dataclass(frozen=True)
class Row:
    threshold: float
    bands: int
    rows: int
    candidate_at_threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0


def calibrate(pairs: list[Pair], spec: NearDedupSpec) -> list[Row]:
    """For each threshold: which pairs the near-dedup stage would remove (a shared band, then
    a Jaccard similarity, exact or estimated as `spec.verify` says, at or above the
    threshold) against the labels."""
    texts = pa.array([p.a for p in pairs] + [p.b for p in pairs])
    sigs = signatures(texts, spec)
    equal = sigs[: len(pairs)] == sigs[len(pairs) :]  # (P, num_perm)
    first = np.arange(len(pairs))
    measured = (
        exact_jaccard(texts, spec)(first, first + len(pairs))
        if spec.verify == "exact"
        else equal.mean(axis=1)
    )
    out = []
    for t in THRESHOLDS:
        at_t = spec.model_copy(update={"threshold": t})
        bands, rows = bands_and_rows(at_t)
        lanes = equal[:, : bands * rows].reshape(len(pairs), bands, rows)
        candidate = lanes.all(axis=2).any(axis=1)
        removed = candidate & (measured >= t)
        truth = np.array(
            [p.jaccard >= t if p.jaccard is not None else bool(p.duplicate) for p in pairs]
        )
        out.append(
            Row(
                threshold=t,
                bands=bands,
                rows=rows,
                candidate_at_threshold=float(candidate_probability(t, bands, rows)),
                true_positives=int((removed & truth).sum()),
                false_positives=int((removed & ~truth).sum()),
                false_negatives=int((~removed & truth).sum()),
            )
        )
    return out
