"""The NSFW stage: real benign images pass NudeNet, unsafe rows are removed (the rule itself:
tests/test_safety.py)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pyarrow as pa
import pytest

from weft.curate.nsfw import NsfwFilter
from weft.curate.schema import KEPT, REMOVED, ROW_SCHEMA
from weft.demo.corpus import draw, encode
from weft.specs import NsfwSpec

SPEC = NsfwSpec(threshold=0.5)
SAMPLES = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"


def benign_images() -> list[bytes]:
    """Real photographs shipped with matplotlib (a portrait of Grace Hopper, a product photo)
    and drawn demo images."""
    photos = [
        (SAMPLES / name).read_bytes()
        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
    ]
    rng = np.random.default_rng(0)
    drawn = [encode(draw(rng, 96)[0], "JPEG") for _ in range(4)]
    return photos + drawn


@pytest.fixture(scope="module")
def stage() -> NsfwFilter:
    return NsfwFilter(SPEC)


def test_real_benign_images_pass_nudenet(stage: NsfwFilter) -> None:
    images = benign_images()
    n = len(images)
    columns = {f.name: pa.nulls(n, f.type) for f in ROW_SCHEMA}
    columns |= {"image": pa.array(images, pa.binary()), "status": pa.array([KEPT] * n)}
    out = stage(pa.table(columns, schema=ROW_SCHEMA))
    assert out["status"].to_pylist() == [KEPT] * n
    assert all(s is not None and s < SPEC.threshold for s in out["nsfw_score"].to_pylist())
    # the detector really ran: it finds the face in the portrait
    assert "FACE_FEMALE" in out["nsfw_labels"].to_pylist()[0]


def test_a_row_is_removed_when_the_rule_says_unsafe() -> None:
    """A benign label made 'unsafe' by the spec exercises the removal path on a real image."""
    portrait = (SAMPLES / "grace_hopper.jpg").read_bytes()
    face_is_unsafe = NsfwFilter(NsfwSpec(unsafe_labels=["FACE_FEMALE"], threshold=0.3))
    columns = {f.name: pa.nulls(1, f.type) for f in ROW_SCHEMA}
    columns |= {"image": pa.array([portrait], pa.binary()), "status": pa.array([KEPT])}
    out = face_is_unsafe(pa.table(columns, schema=ROW_SCHEMA))
    assert out["status"].to_pylist() == [REMOVED]
    assert out["reason"].to_pylist() == ["nsfw"]
    assert out["image"].to_pylist() == [None]
    assert out["nsfw_score"].to_pylist()[0] >= 0.3


def test_an_image_on_several_rows_is_detected_once_and_each_row_gets_its_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One picture captioned in three languages is three rows: one detector call, three
    removals (the unsafe rule as above), the other image scored on its own."""
    portrait = (SAMPLES / "grace_hopper.jpg").read_bytes()
    drawn = encode(draw(np.random.default_rng(1), 96)[0], "PNG")
    stage = NsfwFilter(NsfwSpec(unsafe_labels=["FACE_FEMALE"], threshold=0.3))
    calls: list[np.ndarray] = []
    detect = stage.detector.detect

    def counted(image: np.ndarray) -> list[dict[str, object]]:
        calls.append(image)
        return detect(image)

    monkeypatch.setattr(stage.detector, "detect", counted)
    images = [portrait, drawn, portrait, portrait]
    columns = {f.name: pa.nulls(4, f.type) for f in ROW_SCHEMA}
    columns |= {"image": pa.array(images, pa.binary()), "status": pa.array([KEPT] * 4)}
    out = stage(pa.table(columns, schema=ROW_SCHEMA))
    assert len(calls) == 2
    assert out["status"].to_pylist() == [REMOVED, KEPT, REMOVED, REMOVED]
    scores = out["nsfw_score"].to_pylist()
    assert scores[0] == scores[2] == scores[3] >= 0.3


def test_an_image_a_removed_row_keeps_for_its_thumbnail_is_checked_and_dropped_if_unsafe() -> None:
    """A duplicate removed before this stage keeps its image for the explorer's thumbnail:
    the check scores it, drops it if unsafe, and leaves its decision as it was."""
    portrait = (SAMPLES / "grace_hopper.jpg").read_bytes()
    drawn = encode(draw(np.random.default_rng(2), 96)[0], "PNG")
    face_is_unsafe = NsfwFilter(NsfwSpec(unsafe_labels=["FACE_FEMALE"], threshold=0.3))
    columns = {f.name: pa.nulls(2, f.type) for f in ROW_SCHEMA}
    columns |= {
        "image": pa.array([portrait, drawn], pa.binary()),
        "status": pa.array([REMOVED, REMOVED]),
        "reason": pa.array(["near_duplicate", "exact_duplicate"]),
    }
    out = face_is_unsafe(pa.table(columns, schema=ROW_SCHEMA))
    assert out["reason"].to_pylist() == ["near_duplicate", "exact_duplicate"]
    assert out["image"].to_pylist() == [None, drawn]
    assert out["nsfw_score"].to_pylist()[0] >= 0.3
