"""Near-duplicate text: shingles → MinHash signatures → LSH band keys → verified clusters.

Pure functions over pyarrow tables; `pipeline.py` runs them on Ray Data. The signature of a
row is `num_perm` uint32 lanes stored as bytes; two rows whose signatures agree on every lane
of some band become candidates, and a candidate pair is kept only when the fraction of equal
lanes (the estimated Jaccard similarity; or, under `verify: exact`, the Jaccard similarity of
the shingle sets) reaches the threshold. Clusters are the connected
components of the verified pairs; the smallest (source_uri, key) of a cluster is kept.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from weft.curate.exact import DUPLICATES, MarkDuplicates
from weft.curate.phash import hamming
from weft.curate.schema import active, kept_values, with_columns
from weft.specs import NearDedupSpec

STAGE = "near_dedup"
_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, kind: str, n: int) -> list[str]:
    """Word or character n-grams of the lower-cased text, deduplicated.

    A text shorter than `n` tokens is one shingle of all its tokens (so such texts match only
    when they are the same after normalisation); a text with no word at all is one shingle
    of its characters. No text yields an empty set.
    """
    lowered = text.lower()
    tokens = _WORD.findall(lowered) if kind == "word" else list(lowered)
    sep = " " if kind == "word" else ""
    if len(tokens) < n:
        return [sep.join(tokens) or lowered]
    return list(dict.fromkeys(sep.join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))


def bands_and_rows(spec: NearDedupSpec) -> tuple[int, int]:
    """(bands, rows per band): from the spec, else datasketch's optimum for the threshold with
    false negatives weighted 19:1 over false positives, since every candidate is verified."""
    if spec.bands and spec.rows:
        return spec.bands, spec.rows
    bands, rows = _optimal_param(spec.threshold, spec.num_perm, 0.05, 0.95)
    return int(bands), int(rows)


def signatures(texts: list[str], spec: NearDedupSpec) -> list[bytes]:
    """MinHash signatures (num_perm uint32 lanes, as bytes) with the spec's engine."""
    sets = [shingles(t, spec.shingle, spec.ngram) for t in texts]
    if spec.engine == "rensa":
        from rensa import RMinHash

        out = []
        for s in sets:
            m = RMinHash(num_perm=spec.num_perm, seed=spec.seed)
            m.update(s)
            out.append(np.asarray(m.digest(), dtype=np.uint32).tobytes())
        return out
    return [
        m.hashvalues.astype(np.uint32).tobytes()
        for m in MinHash.bulk(
            [[x.encode() for x in s] for s in sets], num_perm=spec.num_perm, seed=spec.seed
        )
    ]


class Signatures:
    """Stage: fill `minhash` for kept rows with text."""

    name = "minhash"
    actors: ClassVar[int] = 0

    def __init__(self, spec: NearDedupSpec) -> None:
        self.spec = spec

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = kept_values(batch, "text")
        sigs: list[bytes | None] = [None] * batch.num_rows
        for (i, _), sig in zip(rows, signatures([t for _, t in rows], self.spec), strict=True):
            sigs[i] = sig
        return with_columns(batch, minhash=sigs)


def image_chunks(phash: int, distance: int) -> list[int]:
    """The 64 hash bits cut into `distance` + 1 chunks (as integers): two hashes within
    `distance` bits agree on at least one chunk (pigeonhole), so chunks are exact LSH bands."""
    bits = phash & (1 << 64) - 1
    edges = np.linspace(0, 64, distance + 2).astype(int).tolist()
    return [(bits >> lo) & ((1 << (hi - lo)) - 1) for lo, hi in pairwise(edges)]


_LANE_WEIGHTS = np.random.default_rng(20261123).integers(1, 2**63, size=1024, dtype=np.uint64) | 1


def _bucket(lanes: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """(n, r) integer lanes and (n,) salts → (n,) 64-bit bucket ids: a weighted sum of the
    lanes mod 2^64 with odd random weights, then splitmix64's finaliser. Different bands
    collide with probability about 2^-64; a collision only adds a candidate, which is then
    verified."""
    h = (lanes.astype(np.uint64) * _LANE_WEIGHTS[: lanes.shape[1]]).sum(axis=1, dtype=np.uint64)
    h = h + salt.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h.view(np.int64)


def band_keys(batch: pa.Table, bands: int, rows: int, spec: NearDedupSpec) -> pa.Table:
    """One row per (kept row, band): the narrow table the grouping shuffles.

    `bucket` is a 64-bit id of one band: of the MinHash lanes, or, for image-text pairs
    under `match: image`, of a pHash chunk. Its salt keeps each band, and documents, pairs
    and image chunks, in separate key spaces.
    """
    batch = batch.filter(active(batch))
    batch = batch.filter(batch["minhash"].is_valid())
    n = batch.num_rows
    if n == 0:
        return pa.table(
            {
                "bucket": pa.array([], pa.int64()),
                "id": pa.array([], pa.string()),
                "source_uri": pa.array([], pa.string()),
                "key": pa.array([], pa.string()),
            }
        )
    sigs = np.frombuffer(b"".join(batch["minhash"].to_pylist()), np.uint32).reshape(n, -1)
    pair = batch["image_phash"].is_valid().to_numpy(zero_copy_only=False)
    by_image = pair & (spec.match == "image")
    text_rows = np.flatnonzero(~by_image)
    lanes = sigs[text_rows, : bands * rows].reshape(len(text_rows), bands, rows)
    salt = np.arange(bands)[None, :] + np.where(pair[text_rows], 1 << 20, 0)[:, None]
    buckets = [_bucket(lanes.reshape(-1, rows), salt.ravel())]
    owners = [np.repeat(text_rows, bands)]
    image_rows = np.flatnonzero(by_image)
    if len(image_rows):
        phashes = batch["image_phash"].to_numpy(zero_copy_only=False)
        chunks = np.array(
            [image_chunks(int(phashes[i]), spec.image_max_distance) for i in image_rows],
            dtype=np.uint64,
        )  # (m, distance + 1)
        salt = (
            np.arange(chunks.shape[1])[None, :] + (2 << 20) + np.zeros_like(chunks, dtype=np.int64)
        )
        buckets.append(_bucket(chunks.reshape(-1, 1), salt.ravel()))
        owners.append(np.repeat(image_rows, chunks.shape[1]))
    owner = np.concatenate(owners)
    names = batch.select(["id", "source_uri", "key"]).take(pa.array(owner))
    return names.add_column(0, "bucket", pa.array(np.concatenate(buckets), pa.int64()))


EDGES = pa.schema([("a", pa.string()), ("b", pa.string())])


MAX_BUCKET = 64


def candidate_pairs(block: pa.Table) -> pa.Table:
    """Candidate edges (a, b), a after b in (source_uri, key) order, of every bucket in `block`.

    `block` must hold every row of each bucket it contains (a hash-partitioned block). A
    bucket of up to MAX_BUCKET rows gives all its pairs, so verification can pick the right
    partner; a larger one (boilerplate) gives the chain of neighbours, linear in its size.
    """
    if block.num_rows == 0:
        return EDGES.empty_table()
    block = block.sort_by(
        [("bucket", "ascending"), ("source_uri", "ascending"), ("key", "ascending")]
    )
    buckets = block["bucket"].to_numpy(zero_copy_only=False)
    ids = block["id"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)]
    a: list[str] = []
    b: list[str] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - start < 2:
            continue
        if end - start <= MAX_BUCKET:
            later, earlier = np.triu_indices(end - start, k=1)[::-1]
        else:
            later, earlier = np.arange(1, end - start), np.arange(end - start - 1)
        a.extend(ids[start + later])
        b.extend(ids[start + earlier])
    edges = pa.table({"a": a, "b": b}, schema=EDGES)
    edges = edges.filter(pc.not_equal(edges["a"], edges["b"]))
    return edges.group_by(["a", "b"]).aggregate([])


def similarity(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity: the fraction of equal signature lanes."""
    a = np.frombuffer(sig_a, dtype=np.uint32)
    b = np.frombuffer(sig_b, dtype=np.uint32)
    return float(np.mean(a == b))


def clusters(edges: pa.Table, rows: pa.Table, spec: NearDedupSpec) -> pa.Table:
    """Verify candidate edges and cluster them into a DUPLICATES table.

    `rows` has (id, source_uri, key, text, minhash, image_phash) for every id in `edges`. An
    edge counts when its Jaccard similarity (estimated from the signatures, or computed
    exactly from the shingles under `verify: exact`) reaches the threshold and, for
    image-text pairs under `match: both`, the images' pHashes are within
    `image_max_distance` bits. Clusters are connected components of the counted edges; each
    cluster keeps its smallest (source_uri, key) row and every other row points at it with
    its similarity to that row. Runs in one process: its input is the candidate edges and
    their ends only.
    """
    order = rows.sort_by([("source_uri", "ascending"), ("key", "ascending")])
    ids = order["id"].to_pylist()
    index = {row_id: i for i, row_id in enumerate(ids)}
    sigs = np.frombuffer(b"".join(order["minhash"].to_pylist()), dtype=np.uint32).reshape(
        len(ids), -1
    )
    if spec.verify == "exact":
        sets = [set(shingles(t, spec.shingle, spec.ngram)) for t in order["text"].to_pylist()]

    def similarity_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if spec.verify == "exact":
            pairs = zip(a.tolist(), b.tolist(), strict=True)
            return np.array([len(sets[x] & sets[y]) / len(sets[x] | sets[y]) for x, y in pairs])
        return (sigs[a] == sigs[b]).mean(axis=1)

    a = np.array([index[x] for x in edges["a"].to_pylist()], dtype=np.int64)
    b = np.array([index[x] for x in edges["b"].to_pylist()], dtype=np.int64)
    text_ok = similarity_of(a, b) >= spec.threshold
    hashes = order["image_phash"].fill_null(0).to_numpy()
    pair = order["image_phash"].is_valid().to_numpy(zero_copy_only=False)[a]
    image_ok = hamming(hashes[a], hashes[b]) <= spec.image_max_distance
    # documents: text; pairs: text, image or both, as the spec says
    keep = {
        "text": text_ok,
        "both": text_ok & (~pair | image_ok),
        "image": np.where(pair, image_ok, text_ok),
    }[spec.match]
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for x, y in zip(a[keep].tolist(), b[keep].tolist(), strict=True):
        rx, ry = root(x), root(y)
        if rx != ry:  # the smaller index (earlier source_uri, key) becomes the root
            parent[max(rx, ry)] = min(rx, ry)
    roots = np.array([root(i) for i in range(len(ids))], dtype=np.int64)
    dup = np.flatnonzero(roots != np.arange(len(ids)))
    sims = similarity_of(dup, roots[dup])
    kept = [ids[roots[i]] for i in dup]
    return pa.table(
        {
            "id": [ids[i] for i in dup],
            "duplicate_of": kept,
            "similarity": sims,
            "detail": [
                f"{spec.verify} Jaccard {s:.2f} with {k}" for s, k in zip(sims, kept, strict=True)
            ],
        },
        schema=DUPLICATES,
    )


class MarkNearDuplicates(MarkDuplicates):
    """Stage: remove the near duplicates that `clusters` found."""

    name = STAGE
    reason = "near_duplicate"
