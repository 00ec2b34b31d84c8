"""An item's lineage names each link it cannot read, and why, instead of guessing it (the
whole chain, read from a real curation, training run, registry and index, is checked in
tests/integration/test_page.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weft.serve.lineage import trace
from weft.serve.search import Manifest

ITEM = {
    "id": "k1",
    "caption": "a red circle",
    "lang": "en",
    "nsfw": False,
    "source_uri": "/in/a.tar",
    "key": "a",
    "image_hash": "h1",
}


def manifest(data: str, version: str = "") -> Manifest:
    return Manifest("absent-clip", "3", 4, 1, data, "", 8, 16, 0.0, data_version=version)


@pytest.fixture(autouse=True)
def empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")


def test_a_replaced_curated_version_and_an_unknown_model_are_named_as_gaps(
    tmp_path: Path,
) -> None:
    gone = str(tmp_path / "curated" / "versions" / "20261201T000000Z-abcdef")
    chain = trace(ITEM, manifest(str(tmp_path / "curated"), gone), "/index/absent-clip/v3")
    assert chain.curation is None and chain.dataset is None and chain.model is None
    assert (chain.source.uri, chain.source.key, chain.source.image_hash) == ("/in/a.tar", "a", "h1")
    assert chain.source.ordinal is None  # only curation's row records it
    curation, registry = chain.gaps
    assert curation.startswith("curation: the curated version the index read cannot be read")
    assert gone in curation
    assert registry.startswith("registry: absent-clip/3: not found")
    assert chain.index.uri == "/index/absent-clip/v3"


def test_the_curated_row_gives_the_source_and_decisions_when_the_model_is_gone(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    row = {"id": ["k1"], "source_uri": ["/in/a.tar"], "key": ["a"], "ordinal": [7]}
    extra = {"text_hash": ["t1"], "image_hash": ["h1"], "lang": ["en"], "lang_score": [0.9]}
    pq.write_table(pa.table(row | extra), tmp_path / "data" / "part-0.parquet")
    report = {"name": "c", "run": "r", "counts": {"input_rows": 2, "kept": 1, "content_hash": "x"}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    chain = trace(ITEM, manifest(str(tmp_path)), "/index")
    assert chain.source.ordinal == 7 and chain.source.text_hash == "t1"
    assert chain.curation is not None
    assert (chain.curation.status, chain.curation.lang) == ("kept", "en")
    assert chain.dataset is not None and chain.dataset.current
    assert chain.dataset.counts == {"input": 2, "kept": 1, "removed": 0, "quarantined": 0}
    assert [g.split(":")[0] for g in chain.gaps] == ["registry"]
