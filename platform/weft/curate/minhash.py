"""Near-duplicate text: shingle hashes → MinHash signatures → LSH band keys → verified clusters.

Pure functions over pyarrow tables; `pipeline.py` runs them on Ray Data. The signature of a
row is `num_perm` uint32 lanes stored as bytes; two rows whose signatures agree on every lane
of some band become candidates (grouped in `dedup.py`), and a candidate pair counts only when
its Jaccard similarity reaches the threshold: the Jaccard of the two shingle sets (`verify:
exact`, the default) or the fraction of equal lanes (`verify: estimate`). Images of
image-text pairs (`match: both` or `image`) are compared by perceptual hash and thumbnail
(`phash.py`); under `match: image` their hash chunks are the bands. Clusters are the
connected components of the verified pairs; the smallest (source_uri, key) of a cluster is
kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import pairwise
from typing import ClassVar, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weft.curate.dedup import DUPLICATES, KEYS, NEAR, NEAR_STAGE, keys_table
from weft.curate.phash import THUMB_BYTES, hamming, thumb_similarity
from weft.curate.schema import active, with_columns
from weft.curate.spec import NearDedupSpec

# Between two words: anything but letters, marks (Indic vowel signs), digits and underscores.
_SEPARATOR = r"[^\p{L}\p{M}\p{N}_]+"
_M64 = np.uint64
_M32 = np.uint32
_BYTE_BASE = _M64(0x100000001B3)  # FNV-1a's prime: odd, so the byte powers never vanish
_GRAM_WEIGHTS = np.random.default_rng(20261124).integers(1, 2**63, 64, dtype=np.uint64) | _M64(1)


def fmix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64s: every input bit reaches every output bit."""
    h = h ^ (h >> _M64(30))
    h = h * _M64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> _M64(27))
    h = h * _M64(0x94D049BB133111EB)
    return h ^ (h >> _M64(31))


def _hash_segments(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the non-empty byte ranges data[starts[i]:ends[i]]: a polynomial of
    the bytes with an odd base (wrapping at 2^64), mixed with the length."""
    lengths = ends - starts
    if len(lengths) == 0:
        return np.zeros(0, np.uint64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(int(lengths.sum())) - np.repeat(first, lengths)
    powers = np.cumprod(np.full(int(lengths.max()), _BYTE_BASE, dtype=np.uint64))
    values = (data[np.repeat(starts, lengths) + position].astype(np.uint64) + _M64(1)) * powers[
        position
    ]
    return fmix64(np.add.reduceat(values, first) ^ lengths.astype(np.uint64))


def _string_parts(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of a non-null string array, read from its Arrow buffers."""
    strings = strings.cast(pa.large_string())
    _, offsets, data = strings.buffers()
    offs = np.frombuffer(offsets, np.int64, len(strings) + 1, strings.offset * 8)
    return (np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)), offs


# The bytes of ASCII word characters: what the separator leaves of an ASCII text.
_ASCII_WORD = np.zeros(256, bool)
_ASCII_WORD[[*b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"]] = True


def _words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of the words of every text, in order, and the index of each one's text.
    ASCII texts are cut in numpy, the others by the separator's regular expression (about
    3x slower); both give the same words."""
    ascii_ = pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
    if ascii_.all():
        return _ascii_words(texts)
    if not ascii_.any():
        return _regex_words(texts)
    ascii_rows, other_rows = np.flatnonzero(ascii_), np.flatnonzero(~ascii_)
    a_tokens, a_parent = _ascii_words(texts.take(pa.array(ascii_rows)))
    o_tokens, o_parent = _regex_words(texts.take(pa.array(other_rows)))
    parent = np.concatenate([ascii_rows[a_parent], other_rows[o_parent]])
    order = np.argsort(parent, kind="stable")
    return np.concatenate([a_tokens, o_tokens])[order], parent[order]


def _regex_words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    parts = pc.split_pattern_regex(texts, pattern=_SEPARATOR)
    words = pc.list_flatten(parts)
    nonempty = pc.greater(pc.binary_length(words), 0)
    parent = pc.list_parent_indices(parts).filter(nonempty).to_numpy()
    data, offsets = _string_parts(words.filter(nonempty))
    return _hash_segments(data, offsets[:-1], offsets[1:]), parent


def _ascii_words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    data, offsets = _string_parts(texts)
    word = _ASCII_WORD[data[offsets[0] : offsets[-1]]]
    if not word.any():
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    bounds = offsets - offsets[0]  # a word never runs across two texts:
    before = np.r_[False, word[:-1]]
    before[bounds[:-1][bounds[:-1] < len(word)]] = False
    after = np.r_[word[1:], False]
    after[bounds[1:][bounds[1:] > 0] - 1] = False
    starts = np.flatnonzero(word & ~before) + offsets[0]
    ends = np.flatnonzero(word & ~after) + offsets[0] + 1
    parent = np.searchsorted(offsets, starts, side="right") - 1
    return _hash_segments(data, starts, ends), parent


def shingle_hashes(texts: pa.Array, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hashes of every text's shingles, flat, and each text's offsets into them.

    Shingles are the word n-grams (words: runs of letters, marks, digits and underscores) or
    character n-grams of the lower-cased text, hashed from the tokens' hashes, all vectorised
    over the batch. A text shorter than `n` tokens is one shingle of all its tokens (so such
    texts match only when their tokens are the same); a text with no token (punctuation
    only, or empty) is one shingle of all its characters. No text has an empty set.
    """
    lowered = pc.utf8_lower(texts)
    data, text_offsets = _string_parts(lowered)
    if kind == "word":
        tokens, parent = _words(lowered)
    else:
        starts = np.flatnonzero((data[text_offsets[0] : text_offsets[-1]] & 0xC0) != 0x80)
        starts = starts + text_offsets[0]
        tokens = _hash_segments(data, starts, np.append(starts[1:], text_offsets[-1]))
        parent = np.searchsorted(text_offsets, starts, side="right") - 1
    count = np.bincount(parent, minlength=len(texts))
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    grams, owners = [], []
    if len(tokens) >= n:  # n-grams that stay inside one text
        gram = sum(
            (tokens[k : len(tokens) - n + 1 + k] * _GRAM_WEIGHTS[k] for k in range(n)),
            start=np.zeros(len(tokens) - n + 1, np.uint64),
        )
        inside = parent[: len(parent) - n + 1] == parent[n - 1 :]
        grams.append(fmix64(gram[inside]))
        owners.append(parent[: len(parent) - n + 1][inside])
    short = np.flatnonzero((count > 0) & (count < n))
    if len(short):  # all the tokens of a short text as one shingle
        mine = np.isin(parent, short)
        position = np.arange(len(tokens))[mine] - first[parent[mine]]
        weighted = tokens[mine] * _GRAM_WEIGHTS[position]
        summed = np.add.reduceat(weighted, np.concatenate([[0], np.cumsum(count[short])[:-1]]))
        grams.append(fmix64(summed ^ count[short].astype(np.uint64)))
        owners.append(short)
    bare = np.flatnonzero(count == 0)
    if len(bare):  # no token: the whole text as one shingle
        lengths = np.diff(text_offsets)[bare]
        whole = np.zeros(len(bare), np.uint64)
        some = lengths > 0
        if some.any():
            whole[some] = _hash_segments(
                data, text_offsets[bare[some]], text_offsets[bare[some] + 1]
            )
        grams.append(fmix64(whole + _M64(0x9E3779B97F4A7C15)))
        owners.append(bare)
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(texts)))])
    return np.concatenate(grams)[order], offsets


def bands_and_rows(spec: NearDedupSpec) -> tuple[int, int]:
    """(bands, rows per band): from the spec, else datasketch's optimum for the threshold with
    false negatives weighted 99:1 over false positives, since every candidate is verified."""
    if spec.bands and spec.rows:
        return spec.bands, spec.rows
    return _optimal_bands(spec.threshold, spec.num_perm)


@cache
def _optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    from datasketch.lsh import _optimal_param  # datasketch imports scipy: only when needed

    bands, rows = _optimal_param(threshold, num_perm, 0.01, 0.99)
    return int(bands), int(rows)


# Texts shingled at a time: large enough to vectorise, small enough to stay in cache.
SIGN_CHUNK = 512


def signatures(texts: pa.Array, spec: NearDedupSpec) -> np.ndarray:
    """MinHash signatures, (len(texts), num_perm) uint32, from the shingle hashes by the spec's
    engine: datasketch's affine permutations (on the hashes' low 32 bits), or rensa's."""
    out = np.zeros((len(texts), spec.num_perm), np.uint32)
    for start in range(0, len(texts), SIGN_CHUNK):
        chunk = texts.slice(start, SIGN_CHUNK)
        out[start : start + len(chunk)] = _sign(
            *shingle_hashes(chunk, spec.shingle, spec.ngram), spec
        )
    return out


def _sign(hashes: np.ndarray, offsets: np.ndarray, spec: NearDedupSpec) -> np.ndarray:
    if spec.engine == "rensa":
        from rensa import RMinHash

        matrix = RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, offsets.astype(np.uint64), spec.num_perm, spec.seed
        )
        return np.array(matrix.to_rows(), dtype=np.uint32)
    return _affine32(hashes, offsets, *_permutations(spec.num_perm, spec.seed))


@cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations (a, b) for `num_perm` lanes and `seed`."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, hashfunc=int, scheme="affine32").permutations
    return a.astype(np.uint32), b.astype(np.uint32)


# Lanes of `_affine32` at a time: 8 x the shingles of a chunk stays in cache.
_LANES = 8


def _affine32(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """datasketch's affine32 MinHash (`MinHash.update_batch`: each 32-bit hash mixed by
    MurmurHash3's fmix32, then a * h + b mod 2^32, the minimum per lane) of every text at
    once: (texts, lanes) uint32, equal to datasketch's lane for lane, about 9x faster."""
    h = (hashes & _M64(0xFFFFFFFF)).astype(np.uint32)
    h ^= h >> _M32(16)
    h *= _M32(0x85EBCA6B)
    h ^= h >> _M32(13)
    h *= _M32(0xC2B2AE35)
    h ^= h >> _M32(16)
    out = np.empty((len(a), len(offsets) - 1), np.uint32)
    lanes = np.empty((_LANES, len(h)), np.uint32)
    for lo in range(0, len(a), _LANES):
        block = lanes[: len(a[lo : lo + _LANES])]
        np.multiply(a[lo : lo + _LANES, None], h[None, :], out=block)
        block += b[lo : lo + _LANES, None]
        out[lo : lo + _LANES] = np.minimum.reduceat(block, offsets[:-1], axis=1)
    return out.T


class Signatures:
    """Stage: fill `minhash` (the signature's bytes) for kept rows with text."""

    name = "minhash"
    actors: ClassVar[int] = 0

    def __init__(self, spec: NearDedupSpec) -> None:
        self.spec = spec

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = np.flatnonzero(pc.and_(active(batch), batch["text"].is_valid()).to_numpy())
        sigs: list[bytes | None] = [None] * batch.num_rows
        found = signatures(batch["text"].take(pa.array(rows)).combine_chunks(), self.spec)
        for i, sig in zip(rows.tolist(), found, strict=True):
            sigs[i] = sig.tobytes()
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


def band_keys(batch: pa.Table, spec: NearDedupSpec) -> pa.Table:
    """KEYS rows (kind NEAR), one per (kept row, band), for the grouping in `dedup.py`.

    `bucket` is a 64-bit id of one band: of the MinHash lanes, or, for image-text pairs
    under `match: image`, of a pHash chunk. Its salt keeps each band, and documents, pairs
    and image chunks, in separate key spaces.
    """
    batch = batch.filter(active(batch))
    batch = batch.filter(batch["minhash"].is_valid())
    n = batch.num_rows
    if n == 0:
        return KEYS.empty_table()
    bands, rows = bands_and_rows(spec)
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
    bucket = np.concatenate(buckets)
    names = batch.select(["id", "source_uri", "key"]).take(pa.array(np.concatenate(owners)))
    return keys_table(NEAR, bucket, np.zeros(len(bucket), np.int64), names)


def similarity(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity: the fraction of equal signature lanes."""
    a = np.frombuffer(sig_a, dtype=np.uint32)
    b = np.frombuffer(sig_b, dtype=np.uint32)
    return float(np.mean(a == b))


Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def exact_jaccard(texts: pa.Array, spec: NearDedupSpec) -> Similarity:
    """Exact Jaccard similarity of pairs (by index into `texts`) of their shingle sets."""
    sets = []
    for start in range(0, len(texts), SIGN_CHUNK):
        hashes, offsets = shingle_hashes(texts.slice(start, SIGN_CHUNK), spec.shingle, spec.ngram)
        sets += [np.unique(hashes[lo:hi]) for lo, hi in pairwise(offsets.tolist())]

    def of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        common = np.array(
            [
                len(np.intersect1d(sets[x], sets[y], assume_unique=True))
                for x, y in zip(a.tolist(), b.tolist(), strict=True)
            ],
            dtype=np.float64,
        )
        sizes = np.array([len(s) for s in sets], dtype=np.float64)
        return common / (sizes[a] + sizes[b] - common) if len(a) else common

    return of


class Scores(NamedTuple):
    """How alike the two ends of some pairs are: what their match needs, NaN elsewhere."""

    text: np.ndarray  # Jaccard similarity of the texts
    distance: np.ndarray  # bits between the images' perceptual hashes (-1: not compared)
    image: np.ndarray  # similarity of the images' thumbnails


def judged(pair: np.ndarray, match: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the pairs judged by text and by image: documents by text; image-text pairs
    by text, image or both, as `match` says."""
    return ~pair | (match != "image"), pair & (match != "text")


def image_matches(scores: Scores, spec: NearDedupSpec) -> np.ndarray:
    """Images match when their hashes are within `image_max_distance` bits and their
    thumbnails' similarity reaches `image_threshold`."""
    close = (scores.distance >= 0) & (scores.distance <= spec.image_max_distance)
    return close & (np.nan_to_num(scores.image) >= spec.image_threshold)


SCORED = pa.schema(
    [
        ("a", pa.string()),
        ("b", pa.string()),
        ("text", pa.float64()),
        ("distance", pa.int64()),
        ("image", pa.float64()),
        ("match", pa.bool_()),
    ]
)
# Columns of the rows that `scored` reads (and `text` under `verify: exact`).
SCORED_COLUMNS = ["id", "minhash", "image_phash", "image_thumb"]


def scored(pairs: pa.Table, rows: pa.Table, spec: NearDedupSpec) -> pa.Table:
    """How alike the two ends of each pair (a, b) are, by what their match judges, and
    whether they match (SCORED): the texts' Jaccard similarity (of the shingle sets, or
    estimated from the signatures) must reach the threshold, the images must match
    (`image_matches`). `rows` holds SCORED_COLUMNS of every end, and may hold other rows:
    only the ends are shingled."""
    ends = pc.unique(pa.concat_arrays([pairs["a"].combine_chunks(), pairs["b"].combine_chunks()]))
    rows = rows.filter(pc.is_in(rows["id"], value_set=ends))
    a = pc.index_in(pairs["a"], value_set=rows["id"]).to_numpy(zero_copy_only=False)
    b = pc.index_in(pairs["b"], value_set=rows["id"]).to_numpy(zero_copy_only=False)
    pair = rows["image_phash"].is_valid().to_numpy(zero_copy_only=False)
    hashes = rows["image_phash"].fill_null(0).to_numpy()
    blank = bytes(THUMB_BYTES)
    thumbs = np.frombuffer(
        b"".join(t or blank for t in rows["image_thumb"].to_pylist()), np.uint8
    ).reshape(len(pair), THUMB_BYTES)
    by_text, by_image = judged(pair[a], spec.match)
    text, image = np.full(len(a), np.nan), np.full(len(a), np.nan)
    distance = np.full(len(a), -1, np.int64)
    text[by_text] = _text_similarity(rows, spec)(a[by_text], b[by_text])
    distance[by_image] = hamming(hashes[a[by_image]], hashes[b[by_image]])
    near = by_image & (distance <= spec.image_max_distance)
    image[near] = thumb_similarity(thumbs[a[near]], thumbs[b[near]])
    scores = Scores(text, distance, image)
    match = (~by_text | (np.nan_to_num(text) >= spec.threshold)) & (
        ~by_image | image_matches(scores, spec)
    )
    return pa.table(
        {"a": pairs["a"], "b": pairs["b"], **scores._asdict(), "match": match}, schema=SCORED
    )


def _text_similarity(rows: pa.Table, spec: NearDedupSpec) -> Similarity:
    if spec.verify == "exact":
        return exact_jaccard(rows["text"].combine_chunks(), spec)
    sigs = np.frombuffer(b"".join(rows["minhash"].to_pylist()), np.uint32).reshape(
        rows.num_rows, -1
    )

    def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (sigs[a] == sigs[b]).mean(axis=1)

    return estimate


Scorer = Callable[[pa.Table], pa.Table]


def clusters(candidates: pa.Table, names: pa.Table, score: Scorer, spec: NearDedupSpec) -> pa.Table:
    """The near duplicates among candidate pairs (a, b), as a DUPLICATES table.

    `score` gives the SCORED table of some pairs (`scored`, run where the rows are); `names`
    holds (id, source_uri, key) of every end. Clusters are the connected components of the
    pairs that match; each keeps its smallest (source_uri, key, id) row, and every other row
    points at it with its similarity to that row: the text's, the image's, or under
    `match: both` the lower of the two, named in the detail.
    """
    matched = score(candidates).filter(pc.field("match"))
    firsts = _components(matched, names)
    pairs = pa.table({"a": firsts["id"], "b": firsts["duplicate_of"]})
    return _describe(score(pairs), spec.verify)


def _components(matched: pa.Table, names: pa.Table) -> pa.Table:
    """(id, duplicate_of): each row of a connected component of the `matched` pairs that is
    not its component's first row in (source_uri, key, id) order, and that first row."""
    order = names.sort_by([(c, "ascending") for c in ("source_uri", "key", "id")])
    ids = order["id"].to_pylist()
    a = pc.index_in(matched["a"], value_set=order["id"]).to_numpy(zero_copy_only=False)
    b = pc.index_in(matched["b"], value_set=order["id"]).to_numpy(zero_copy_only=False)
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        rx, ry = root(x), root(y)
        if rx != ry:  # the smaller index (the earlier row) becomes the root
            parent[max(rx, ry)] = min(rx, ry)
    roots = np.array([root(i) for i in range(len(ids))], dtype=np.int64)
    dup = np.flatnonzero(roots != np.arange(len(ids)))
    return pa.table(
        {"id": [ids[i] for i in dup], "duplicate_of": [ids[i] for i in roots[dup]]},
        schema=pa.schema([("id", pa.string()), ("duplicate_of", pa.string())]),
    )


def _describe(pairs: pa.Table, verify: str) -> pa.Table:
    """DUPLICATES from the SCORED (row, its first row) pairs: the similarity of each (the
    lower of text and image where both were judged) and what it is, e.g. "exact Jaccard
    0.91", "image pHash distance 3 (similarity 0.95)"."""
    text, distance, image = (pairs[c].to_numpy(zero_copy_only=False) for c in Scores._fields)
    kept = pairs["b"].to_pylist()
    details = []
    for t, d, i, k in zip(text, distance, image, kept, strict=True):
        parts = [] if np.isnan(t) else [f"{verify} Jaccard {t:.2f}"]
        if d >= 0:
            seen = "not compared" if np.isnan(i) else f"similarity {i:.2f}"
            parts.append(f"image pHash distance {d} ({seen})")
        details.append(" and ".join(parts) + f" with {k}")
    return pa.table(
        {
            "id": pairs["a"],
            "duplicate_of": pairs["b"],
            "similarity": np.fmin(text, image),
            "detail": details,
            "stage": [NEAR_STAGE] * pairs.num_rows,
        },
        schema=DUPLICATES,
    )
