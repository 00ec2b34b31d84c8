"""Near-duplicate text: shingles, LSH candidates, verification and clusters."""

from __future__ import annotations

from functools import partial
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest

from weft.curate.minhash import (
    band_keys,
    bands_and_rows,
    clusters,
    image_chunks,
    scored,
    shingle_hashes,
    signatures,
    similarity,
)
from weft.curate.phash import THUMB_BYTES
from weft.curate.schema import ROW_SCHEMA, with_columns
from weft.curate.spec import NearDedupSpec
from weft.demo.corpus import near_copy, vocabulary, word_jaccard

SPEC = NearDedupSpec()
ESTIMATE = NearDedupSpec(verify="estimate")


def shingle_sets(texts: list[str], kind: str = "word", n: int = 5) -> list[set[int]]:
    hashes, offsets = shingle_hashes(pa.array(texts), kind, n)
    return [set(hashes[lo:hi].tolist()) for lo, hi in pairwise(offsets.tolist())]


def test_text_shorter_than_the_shingle_is_one_shingle_not_nothing() -> None:
    two, bare, six, empty = shingle_sets(
        ["Two words", "!!! ???", "one two three four five six", ""]
    )
    assert len(two) == len(bare) == len(empty) == 1
    assert len(six) == 2
    assert len(shingle_sets(["abcd"], "char", 3)[0]) == 2
    assert shingle_sets(["Two words"]) == shingle_sets(["two, WORDS!"])
    assert shingle_sets(["Two words"]) != shingle_sets(["Two word"])
    assert shingle_sets(["!!! ???"]) != shingle_sets(["??? !!!"])


def test_shingles_are_word_ngrams_in_any_script() -> None:
    a, b = shingle_sets(["नमस्ते दुनिया यह एक परीक्षण है", "नमस्ते दुनिया यह एक परीक्षण था"], n=3)
    assert len(a) == 4 and len(a & b) == 3  # Devanagari vowel signs stay inside their words
    bc, bcd = shingle_sets(["abcd", "äbcd"], "char", 3)
    assert len(bc & bcd) == 1  # "bcd"; multi-byte characters are one token


def test_shingle_hashes_do_not_depend_on_the_batch() -> None:
    texts = ["a b c d e f g", "", "x", "one two three four five six seven"]
    together = shingle_sets(texts)
    assert together == [shingle_sets([t])[0] for t in texts]


def test_short_identical_texts_match_and_short_different_ones_do_not() -> None:
    a, b, c = signatures(pa.array(["A red circle", "a red   circle", "a blue circle"]), SPEC)
    assert similarity(a.tobytes(), b.tobytes()) == 1.0
    assert similarity(a.tobytes(), c.tobytes()) < 0.1


def test_default_bands_favour_recall_since_candidates_are_verified() -> None:
    bands, rows = bands_and_rows(SPEC)
    assert bands * rows <= SPEC.num_perm
    assert 1 - (1 - 0.8**rows) ** bands > 0.9  # a pair at the threshold is very likely a candidate
    assert bands_and_rows(NearDedupSpec(bands=4, rows=32)) == (4, 32)


@pytest.mark.parametrize("engine", ["datasketch", "rensa"])
def test_estimated_similarity_tracks_the_true_jaccard(engine: str) -> None:
    rng = np.random.default_rng(3)
    vocab = vocabulary()
    base = [vocab[i] for i in rng.integers(len(vocab), size=250)]
    spec = NearDedupSpec(engine=engine, num_perm=256)  # type: ignore[arg-type]
    for target in (0.3, 0.6, 0.9):
        copy, truth = near_copy(base, target, vocab, rng)
        assert truth == pytest.approx(word_jaccard(base, copy))
        a, b = signatures(pa.array([" ".join(base), " ".join(copy)]), spec)
        assert similarity(a.tobytes(), b.tobytes()) == pytest.approx(truth, abs=0.1)


def rows(
    sigs: dict[str, np.ndarray],
    phash: dict[str, int] | None = None,
    texts: dict[str, str] | None = None,
    thumbs: dict[str, bytes] | None = None,
) -> pa.Table:
    """Rows for `clusters`; images (when `phash` is given) have blank thumbnails unless
    `thumbs` says otherwise."""
    ids = sorted(sigs)
    thumbs = (thumbs or {}) if phash else {}
    return pa.table(
        {
            "id": ids,
            "source_uri": ["s"] * len(ids),
            "key": ids,
            "text": [texts[i] for i in ids] if texts else ids,
            "minhash": [sigs[i].astype(np.uint32).tobytes() for i in ids],
            "image_phash": pa.array([phash[i] if phash else None for i in ids], pa.int64()),
            "image_thumb": pa.array(
                [thumbs.get(i, bytes(THUMB_BYTES)) if phash else None for i in ids], pa.binary()
            ),
        }
    )


def clusters_of(pairs: pa.Table, table: pa.Table, spec: NearDedupSpec) -> pa.Table:
    """`clusters` with the pairs scored in this process."""
    names = table.select(["id", "source_uri", "key"])
    return clusters(pairs, names, partial(scored, rows=table, spec=spec), spec)


def edges(*pairs: tuple[str, str]) -> pa.Table:
    return pa.table({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]})


def sig_like(base: np.ndarray, agree: float) -> np.ndarray:
    out = base.copy()
    out[int(agree * len(base)) :] += 1
    return out


def test_clusters_verify_the_estimate_and_keep_the_first_row() -> None:
    base = np.arange(128)
    table = rows(
        {"a": base, "b": sig_like(base, 0.9), "c": sig_like(base, 0.85), "d": sig_like(base, 0.5)}
    )
    found = clusters_of(edges(("b", "a"), ("c", "b"), ("d", "a")), table, ESTIMATE)
    got = {r["id"]: (r["duplicate_of"], round(r["similarity"], 2)) for r in found.to_pylist()}
    assert got == {"b": ("a", 0.9), "c": ("a", 0.84)}  # d is a candidate below the threshold


def test_pairs_under_match_both_need_close_images_too() -> None:
    base = np.arange(128)
    table = rows({"a": base, "b": base, "c": base}, phash={"a": 0, "b": 0b111, "c": (1 << 40) - 1})
    found = clusters_of(edges(("b", "a"), ("c", "a")), table, ESTIMATE)
    assert found["id"].to_pylist() == ["b"]  # c has the same caption, a different image
    loose = ESTIMATE.model_copy(update={"match": "text"})
    loose_found = clusters_of(edges(("b", "a"), ("c", "a")), table, loose)
    assert sorted(loose_found["id"].to_pylist()) == ["b", "c"]


def test_exact_verification_uses_the_shingles_not_the_signatures() -> None:
    rng = np.random.default_rng(1)
    vocab = vocabulary()
    base = [vocab[i] for i in rng.integers(len(vocab), size=200)]
    close, _ = near_copy(base, 0.85, vocab, rng)
    far, _ = near_copy(base, 0.6, vocab, rng)
    same = np.arange(128)  # signatures that agree everywhere: the estimate says 1.0
    texts = {"a": " ".join(base), "b": " ".join(close), "c": " ".join(far)}
    table = rows({"a": same, "b": same, "c": same}, texts=texts)
    pairs = edges(("b", "a"), ("c", "a"))
    assert sorted(clusters_of(pairs, table, ESTIMATE)["id"].to_pylist()) == ["b", "c"]
    exact = clusters_of(pairs, table, SPEC)
    assert exact["id"].to_pylist() == ["b"]
    assert exact["similarity"].to_pylist()[0] == pytest.approx(word_jaccard(base, close))


def test_image_chunks_share_one_chunk_within_the_distance() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        h = int(rng.integers(-(2**63), 2**63 - 1))
        flipped = h
        for bit in rng.choice(64, size=6, replace=False):
            flipped ^= 1 << int(bit)
        flipped = flipped - (1 << 64) if flipped >= 1 << 63 else flipped
        pairs = zip(image_chunks(h, 6), image_chunks(flipped, 6), strict=True)
        assert any(a == b for a, b in pairs)
    assert len(image_chunks(0, 6)) == 7


def test_pairs_under_match_image_need_only_close_images() -> None:
    base = np.arange(128)
    other = base + 1  # captions that share nothing
    table = rows({"a": base, "b": other, "c": other}, phash={"a": 0, "b": 0b11, "c": (1 << 40) - 1})
    spec = NearDedupSpec(match="image", verify="estimate")
    found = clusters_of(edges(("b", "a"), ("c", "a")), table, spec)
    assert found["id"].to_pylist() == ["b"]


def test_an_image_match_reports_the_image_similarity_not_the_caption_jaccard() -> None:
    """It reported the captions' Jaccard (0.0 here), whatever had matched."""
    base = np.arange(128)
    table = rows({"a": base, "b": base + 1}, phash={"a": 0, "b": 0b101})
    found = clusters_of(edges(("b", "a")), table, NearDedupSpec(match="image", verify="estimate"))
    assert found.to_pylist() == [
        {
            "id": "b",
            "duplicate_of": "a",
            "similarity": 1.0,
            "detail": "image pHash distance 2 (similarity 1.00) with a",
            "stage": "near_dedup",
        }
    ]


def test_under_match_both_the_lower_similarity_is_reported_with_both_named() -> None:
    base = np.arange(128)
    table = rows({"a": base, "b": sig_like(base, 0.9)}, phash={"a": 0, "b": 1})
    found = clusters_of(edges(("b", "a")), table, ESTIMATE).to_pylist()[0]
    assert found["similarity"] == pytest.approx(0.9, abs=0.01)
    assert found["detail"] == (
        "estimate Jaccard 0.90 and image pHash distance 1 (similarity 1.00) with a"
    )


def test_close_hashes_need_alike_thumbnails_too() -> None:
    """Distinct flat drawings can hash a few bits apart; their thumbnails tell them apart."""
    base = np.arange(128)
    white = bytes([255]) * THUMB_BYTES
    table = rows(
        {"a": base, "b": base, "c": base}, phash={"a": 0, "b": 0, "c": 1}, thumbs={"c": white}
    )
    for match in ("image", "both"):
        spec = NearDedupSpec(match=match, verify="estimate")
        assert clusters_of(edges(("b", "a"), ("c", "a")), table, spec)["id"].to_pylist() == ["b"]


def test_band_keys_under_match_image_band_the_phash_of_pairs_and_the_text_of_documents() -> None:
    spec = NearDedupSpec(match="image", image_max_distance=6)
    sig = np.arange(128, dtype=np.uint32).tobytes()
    empty = pa.table({f.name: pa.nulls(2, f.type) for f in ROW_SCHEMA}, schema=ROW_SCHEMA)
    batch = with_columns(
        empty,
        id=["p", "d"],
        source_uri=["s", "s"],
        key=["p", "d"],
        status=["kept", "kept"],
        minhash=[sig, sig],
        image_phash=[5, None],
    )
    keys = band_keys(batch, spec.model_copy(update={"bands": 16, "rows": 8}))
    counts = {i: keys["id"].to_pylist().count(i) for i in ("p", "d")}
    assert counts == {"p": 7, "d": 16}


def test_signatures_are_datasketchs_lane_for_lane() -> None:
    from datasketch import MinHash

    texts = ["one two three four five six seven", "short", "", "a b c d e f g h i j k"]
    hashes, offsets = shingle_hashes(pa.array(texts), "word", 5)
    low = (hashes & np.uint64(0xFFFFFFFF)).tolist()
    docs = [low[lo:hi] for lo, hi in pairwise(offsets.tolist())]
    theirs = MinHash.bulk(docs, num_perm=SPEC.num_perm, seed=SPEC.seed, hashfunc=int)
    ours = signatures(pa.array(texts), SPEC)
    assert (ours == np.stack([m.hashvalues for m in theirs])).all()


def test_ascii_and_unicode_texts_are_cut_into_the_same_words() -> None:
    texts = ["Hello, world_1  x", "", "!!", "naïve café — déjà vu", "end.\tof,line", "a"]
    mixed = shingle_sets(texts, n=1)
    alone = [shingle_sets([t], n=1)[0] for t in texts]
    assert mixed == alone
    # The ASCII cut and the separator's regular expression agree on ASCII text.
    assert shingle_sets(["x — hello, world_1"], n=1)[0] == shingle_sets(["x hello world_1"], n=1)[0]


def test_scoring_reads_only_the_rows_of_the_pairs_ends() -> None:
    """Verification runs where the rows are, given more rows than its pairs touch."""
    base = np.arange(128)
    sigs = {"a": base, "b": sig_like(base, 0.9), "c": base, "d": sig_like(base, 0.5)}
    pairs = edges(("b", "a"), ("d", "c"))
    ends = scored(pairs, rows(sigs), ESTIMATE)
    more = scored(pairs, rows(sigs | {"e": base, "f": base}), ESTIMATE)
    assert more.drop_columns("image").equals(ends.drop_columns("image"))  # NaN: not compared
    assert ends["match"].to_pylist() == [True, False]
    assert ends["text"].to_pylist() == pytest.approx([0.9, 0.5], abs=0.01)
