"""Calibration of near-duplicate detection on labelled pairs: precision and recall per
threshold. Texts: per Jaccard threshold, with the LSH bands x rows each implies and its
candidate curve. Images: per thumbnail-similarity threshold and per hash distance.

Labelled pairs are JSONL lines `{"a": text, "b": text, "jaccard": float}` (the true
similarity; a pair is a duplicate at threshold t when jaccard >= t) or with `"duplicate":
bool` instead. `weft demo-data` writes `near_pairs.jsonl` of this form for its planted pairs.
Image pairs name images, `{"a": path-or-uri, "b": path-or-uri, "duplicate": bool}`, a
relative path from the pairs file's folder (`weft.data.imagepairs.write_corpus` writes such
a file).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from weft import storage
from weft.curate.minhash import Scores, bands_and_rows, exact_jaccard, image_matches, signatures
from weft.curate.phash import ImageKey, hamming, image_key, thumb_similarity
from weft.curate.spec import NearDedupSpec
from weft.specs import StorageSpec

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.5, 0.96, 0.05))
IMAGE_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.8, 0.99, 0.02))
IMAGE_DISTANCES = tuple(range(0, 13))


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
class Counts:
    true_positives: int
    false_positives: int
    false_negatives: int

    @staticmethod
    def of(removed: np.ndarray, truth: np.ndarray) -> dict[str, int]:
        """The counts of the pairs `removed` against the labels, as fields."""
        return {
            "true_positives": int((removed & truth).sum()),
            "false_positives": int((removed & ~truth).sum()),
            "false_negatives": int((~removed & truth).sum()),
        }

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0


@dataclass(frozen=True)
class Row(Counts):
    """Texts at one Jaccard threshold, with the LSH it implies."""

    threshold: float
    bands: int
    rows: int
    candidate_at_threshold: float


@dataclass(frozen=True)
class ImageRow(Counts):
    """Images at one thumbnail-similarity threshold and hash distance."""

    threshold: float
    max_distance: int
    candidates: float  # share of the labelled duplicates within max_distance bits


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
                **Counts.of(removed, truth),
            )
        )
    return out


def calibrate_images(
    pairs: list[Pair], spec: NearDedupSpec, read: Callable[[str], bytes]
) -> tuple[list[ImageRow], list[ImageRow]]:
    """Which image pairs near-dedup would call duplicates (`minhash.image_matches`) against
    the labels: per similarity threshold at the spec's hash distance, and per hash distance
    at the spec's threshold."""
    if any(p.duplicate is None for p in pairs):
        raise ValueError("image pairs need 'duplicate' (true or false)")
    truth = np.array([bool(p.duplicate) for p in pairs])
    keys = {ref: _image_key(ref, read) for ref in {r for p in pairs for r in (p.a, p.b)}}
    ends = [[keys[p.a] for p in pairs], [keys[p.b] for p in pairs]]
    distance = hamming(*(np.array([k.phash for k in end]) for end in ends))
    similarity = thumb_similarity(
        *(
            np.frombuffer(b"".join(k.thumb for k in end), np.uint8).reshape(len(pairs), -1)
            for end in ends
        )
    )
    scores = Scores(np.full(len(pairs), np.nan), distance, similarity)

    def row(threshold: float, max_distance: int) -> ImageRow:
        at = spec.model_copy(
            update={"image_threshold": threshold, "image_max_distance": max_distance}
        )
        return ImageRow(
            threshold=threshold,
            max_distance=max_distance,
            candidates=float((distance[truth] <= max_distance).mean()) if truth.any() else 1.0,
            **Counts.of(image_matches(scores, at), truth),
        )

    return (
        [row(t, spec.image_max_distance) for t in IMAGE_THRESHOLDS],
        [row(spec.image_threshold, d) for d in IMAGE_DISTANCES],
    )


def _image_key(ref: str, read: Callable[[str], bytes]) -> ImageKey:
    try:
        return image_key(Image.open(io.BytesIO(read(ref))))
    except OSError as err:  # Pillow's UnidentifiedImageError too
        raise ValueError(f"{ref}: not a readable image: {err}") from None


def image_reader(pairs_uri: str, spec: StorageSpec | None = None) -> Callable[[str], bytes]:
    """Reads the images a pairs file names: URIs and absolute paths as they are, other
    paths from the pairs file's folder."""
    folder = pairs_uri.rsplit("/", 1)[0] if "/" in pairs_uri else "."

    def read(ref: str) -> bytes:
        uri = ref if "://" in ref or ref.startswith("/") else f"{folder}/{ref}"
        return storage.read_bytes(storage.resolve(uri, spec))

    return read
