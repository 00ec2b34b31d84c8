"""Image near-dedup through `curate` on Ray, on real drawings: 150 emoji rendered as
transparent PNGs and 50 planted copies (resized, JPEG, flattened, cropped; captions lightly
edited). Needs Debian's fonts-noto-color-emoji and unicode-cldr-core."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads
import pytest

from weft.curate.pipeline import curate
from weft.curate.spec import CurateSpec
from weft.data.imagepairs import COPIES, Corpus, Score, make_corpus, score, write_corpus
from weft.specs import parse_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emoji_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Corpus]:
    raw = tmp_path_factory.mktemp("emoji")
    samples, corpus = make_corpus(distinct=150, copies=50, seed=3)
    write_corpus(raw, samples, corpus)
    return raw, corpus


def curated_score(raw: Path, out: Path, corpus: Corpus, match: str) -> Score:
    """Curate (a dry run: every row's decision) under `match`; score its near duplicates."""
    spec = parse_spec(
        CurateSpec,
        {
            "name": f"emoji-{match}",
            "inputs": [{"uri": str(raw / "pairs"), "format": "webdataset"}],
            "output": str(out),
            "near_dedup": {"match": match},
            "langid": {"enabled": False},
            "nsfw": {"enabled": False},
            "mlflow": {"enabled": False},
        },
    )
    report = curate(spec, dry_run=True)
    assert report.counts.input_rows == len(corpus.originals) + len(corpus.planted)
    decisions = next(p for p in out.rglob("decisions") if p.is_dir())
    rows = pads.dataset(decisions, format="parquet").to_table().to_pylist()
    key_of = {r["id"]: r["key"] for r in rows}
    removed = {r["key"]: key_of[r["duplicate_of"]] for r in rows if r["stage"] == "near_dedup"}
    return score(corpus, removed)


@pytest.mark.parametrize("match", ["image", "both"])
def test_planted_copies_are_found_and_distinct_drawings_kept(
    emoji_corpus: tuple[Path, Corpus], tmp_path: Path, ray_session: None, match: str
) -> None:
    """The captions are recased or have a word appended, which keeps their Jaccard at or
    above 0.8, so `both` finds what `image` finds."""
    raw, corpus = emoji_corpus
    found = curated_score(raw, tmp_path / "out", corpus, match)
    per_kind = {kind: found.recall(kind) for kind in COPIES}
    assert found.recall() >= 0.9, per_kind
    assert found.false_positive_rate <= 0.01, found.distinct_removed
