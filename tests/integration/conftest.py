"""Curated demo data shared by the training tests, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.curate.pipeline import curate
from weft.curate.spec import CurateSpec
from weft.demo.corpus import generate
from weft.specs import parse_spec


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus: 160 pairs in 2 WebDataset shards (`pairs/`), 10 documents
    (`docs/`)."""
    raw = tmp_path_factory.mktemp("raw")
    generate(str(raw), pairs=160, shards=2, documents=10)
    return raw


def _curated(name: str, uri: str, fmt: str, out: Path) -> str:
    """Curate one input with the fast filters only; its content hash."""
    spec = parse_spec(
        CurateSpec,
        {
            "name": name,
            "inputs": [{"uri": uri, "format": fmt}],
            "output": str(out),
            "langid": {"enabled": False},
            "nsfw": {"enabled": False},
            "mlflow": {"enabled": False},
        },
    )
    return curate(spec).counts.content_hash


@pytest.fixture(scope="session")
def curated(
    demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory, ray_session: None
) -> tuple[str, str]:
    """A small curated dataset (the demo pairs, fast filters off) and its content hash."""
    out = tmp_path_factory.mktemp("curated") / "out"
    return str(out), _curated("train-data", str(demo_corpus / "pairs"), "webdataset", out)


@pytest.fixture(scope="session")
def curated_documents(
    demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory, ray_session: None
) -> str:
    """A curated dataset of text documents alone: not one image-text pair."""
    out = tmp_path_factory.mktemp("curated-documents") / "out"
    _curated("documents", str(demo_corpus / "docs"), "jsonl", out)
    return str(out)
