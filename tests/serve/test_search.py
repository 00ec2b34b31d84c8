"""Search over a small index written by hand: an image with captions in two languages is
answered once, by the row that matches best, and filters still apply per row."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weft.registry.versions import ModelVersion
from weft.serve import lexical
from weft.serve.deployments import SearchServer
from weft.serve.lexical import Analyzers
from weft.serve.search import ANN, BM25, ITEMS, MANIFEST, Filters, Manifest, SearchIndex
from weft.specs import SpecError

# (id, image, caption, lang, direction in the 4-d vector space)
ROWS = [
    ("a-en", "img-a", "grinning cat face", "en", (1.0, 0.0, 0.0, 0.0)),
    ("a-de", "img-a", "grinsende Katze", "de", (1.0, 0.0, 0.0, 0.0)),
    ("b-en", "img-b", "a black cat", "en", (0.8, 0.6, 0.0, 0.0)),
    ("c-en", "img-c", "a red apple", "en", (0.0, 0.0, 1.0, 0.0)),
    ("d-de", "img-d", "ein gelber Stern", "de", (0.2, 0.6, 0.0, 0.7746)),
]

# Perceptual hashes: img-b is a near duplicate of img-a (3 bits apart), the others are not.
PHASHES = {"img-a": 0x0F0F, "img-b": 0x0F0F ^ 0b10101, "img-c": -1, "img-d": 0x7F7F_0000}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    folder = tmp_path_factory.mktemp("index")
    vectors = np.array([r[4] for r in ROWS], np.float32)
    (folder / ITEMS).mkdir()
    table = pa.table(
        {
            "id": [r[0] for r in ROWS],
            "caption": [r[2] for r in ROWS],
            "lang": [r[3] for r in ROWS],
            "nsfw": [False] * len(ROWS),
            "source_uri": ["s3://corpus/shard-0.tar"] * len(ROWS),
            "key": [r[0] for r in ROWS],
            "image_hash": [r[1] for r in ROWS],
            "image_phash": [PHASHES[r[1]] for r in ROWS],
            "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(), 4),
            "thumbnail": [b"png"] * len(ROWS),
        }
    )
    pq.write_table(table, folder / ITEMS / "part-0.parquet")
    ann = faiss.IndexHNSWFlat(4, 8, faiss.METRIC_INNER_PRODUCT)
    ann.add(vectors)
    faiss.write_index(ann, str(folder / ANN))
    lexical.write([r[2] for r in ROWS], [r[3] for r in ROWS], folder / BM25)
    manifest = Manifest("clip", "1", 4, len(ROWS), "test", "", 8, 16, 0.0, Analyzers.PER_LANGUAGE)
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest)))
    return SearchIndex(folder)


def query(direction: tuple[float, ...]) -> np.ndarray:
    return np.array(direction, np.float32)


def test_an_image_with_two_captions_is_answered_once(index: SearchIndex) -> None:
    hits = index.search(query((1.0, 0.0, 0.0, 0.0)), None, k=3)
    assert [h.id.split("-")[0] for h in hits] == ["a", "b", "d"]


def test_the_row_that_matches_the_words_stands_for_its_image(index: SearchIndex) -> None:
    hits = index.search(query((1.0, 0.0, 0.0, 0.0)), "Katze", k=2, hybrid=0.5)
    assert [h.id for h in hits] == ["a-de", "b-en"]  # the German caption found the words
    assert hits[0].bm25_score == 1.0


def test_filters_apply_to_rows_before_images_are_collapsed(index: SearchIndex) -> None:
    hits = index.search(query((1.0, 0.0, 0.0, 0.0)), None, k=5, filters=Filters(lang="de"))
    assert [h.id for h in hits] == ["a-de", "d-de"]


def test_a_search_replica_names_a_missing_index_and_a_store_that_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = ModelVersion("clip", "4", "run", {}, ())
    start = SearchServer.func_or_class  # the class the deployment runs
    with pytest.raises(SpecError, match=r"no index of clip v4 under .*: run `weft index"):
        start(str(tmp_path / "index"), version)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing answers
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", down)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with pytest.raises(SpecError, match=r"index: cannot read s3://bucket/index.*cannot reach"):
        start("s3://bucket/index", version)


def test_hiding_near_duplicates_answers_a_group_of_similar_images_once(index: SearchIndex) -> None:
    vector = query((1.0, 0.1, 0.0, 0.0))
    every = [h.id for h in index.search(vector, None, 3)]
    distinct = [h.id for h in index.search(vector, None, 3, Filters(distinct=True))]
    assert every[:2] == ["a-en", "b-en"]
    assert distinct[0] == "a-en" and "b-en" not in distinct and len(distinct) == 3


def test_an_item_is_its_row_without_vector_or_thumbnail(index: SearchIndex) -> None:
    assert index.item("b-en") == {
        "id": "b-en",
        "caption": "a black cat",
        "lang": "en",
        "nsfw": False,
        "source_uri": "s3://corpus/shard-0.tar",
        "key": "b-en",
        "image_hash": "img-b",
    }
    assert index.item("nope") is None
