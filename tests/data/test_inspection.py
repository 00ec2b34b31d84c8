"""The inspection sets: gold files that validate, held-out kinds kept out of training, and
no drawing in two parts."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from weft.data import inspection
from weft.data.inspection import write_sets
from weft.inspection import HELD_OUT, KINDS, LABELS_FILE, PROMPTS, SEEN, SIZE, GoldItem, GoldSet
from weft.models.inspector import PLACES
from weft.specs import SpecError


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sets written from 300 drawn products standing in for openclipart's folders."""
    root = tmp_path_factory.mktemp("inspection")
    png = root / "png"
    rng = np.random.default_rng(0)
    for n in range(300):
        folder = png / inspection.FOLDERS[n % 3]
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGBA", (90, 70), (0, 0, 0, 0))
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        ImageDraw.Draw(image).ellipse((5, 5, 85, 65), fill=(*colour, 255), outline=(0, 0, 0, 255))
        image.save(folder / f"thing{n}_x.png")
    patch = pytest.MonkeyPatch()
    patch.setattr(inspection, "PNG", png)
    write_sets(root / "sets", per_kind=2, val_per_kind=1)
    patch.undo()
    return root / "sets"


def rows(sets: Path, split: str) -> list[dict[str, object]]:
    out = []
    for shard in sorted((sets / "rows" / split).glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    out.append(json.load(tar.extractfile(member)))  # type: ignore[arg-type]
    return out


def test_the_test_gold_set_holds_every_kind_and_as_many_normal_images(sets: Path) -> None:
    gold = GoldSet.read(sets / "gold" / "test")
    kinds = [i.kind for i in gold.items]
    assert all(kinds.count(k) == 2 for k in KINDS)
    assert kinds.count(None) == 2 * len(KINDS)
    for item in gold.items:
        image = Image.open(sets / "gold" / "test" / item.image)
        assert image.size == (SIZE, SIZE)
        assert item.held_out == (item.kind in HELD_OUT)


def test_held_out_kinds_never_enter_training_or_calibration(sets: Path) -> None:
    val = GoldSet.read(sets / "gold" / "val")
    assert {i.kind for i in val.items} - {None} == set(SEEN)
    for split in ("train", "val"):
        found = rows(sets, split)
        assert found
        assert not any(r["kind"] in HELD_OUT for r in found)
        assert not any(k in str(r["caption"]) for r in found for k in HELD_OUT)


def test_no_drawing_is_in_two_parts(sets: Path) -> None:
    test = {i.source for i in GoldSet.read(sets / "gold" / "test").items}
    val = {i.source for i in GoldSet.read(sets / "gold" / "val").items}
    train = {str(r["source"]) for r in rows(sets, "train")}
    val_rows = {str(r["source"]) for r in rows(sets, "val")}
    parts = [test, val, train, val_rows]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not a & b


def test_a_row_is_a_prompt_then_its_answer(sets: Path) -> None:
    prompts = [p for style in PROMPTS.values() for p in style]
    places = [p for row in PLACES for p in row]
    for row in rows(sets, "train"):
        prompt = next(p for p in prompts if str(row["caption"]).startswith(p))
        answer = str(row["caption"])[len(prompt) + 1 :]
        assert answer == "no defect" or any(answer.endswith(f" at {p}") for p in places)
        assert (answer == "no defect") or row["kind"] is not None


def test_a_gold_file_that_breaks_a_rule_is_refused_naming_the_field(
    sets: Path, tmp_path: Path
) -> None:
    (tmp_path / "images").mkdir()
    data = json.loads((sets / "gold" / "test" / LABELS_FILE).read_text())
    item = next(i for i in data["items"] if i["kind"] == "scratch")
    (tmp_path / item["image"]).write_bytes(b"")
    bad = dict(data, items=[dict(item, where="top" if item["where"] != "top" else "bottom")])
    (tmp_path / LABELS_FILE).write_text(json.dumps(bad))
    with pytest.raises(SpecError, match=r"items\[0\]: where .* is not the cell of the box"):
        GoldSet.read(tmp_path)
    (tmp_path / LABELS_FILE).write_text(json.dumps(dict(data, items=[dict(item, box=None)])))
    with pytest.raises(SpecError, match="kind, box and where are all given"):
        GoldSet.read(tmp_path)
    (tmp_path / LABELS_FILE).write_text(
        json.dumps(dict(data, items=[dict(item, image="images/x.png")]))
    )
    with pytest.raises(SpecError, match=r"items\[0\]\.image: images/x\.png is missing"):
        GoldSet.read(tmp_path)
    with pytest.raises(SpecError, match=r"no inspection_labels\.json"):
        GoldSet.read(tmp_path / "images")


def test_an_answer_is_right_with_its_kind_at_a_place_overlapping_the_box() -> None:
    item = GoldItem(
        image="images/a.png",
        source="file:///a.png",
        labelled=False,
        kind="speck",
        box=(40, 40, 44, 44),
        where="top left",
        problem="a speck at the top left",
        held_out=False,
    )
    assert item.right("speck at top left")
    assert item.right("speck at middle")  # the box touches the middle cell (43 > 42.7)
    assert not item.right("speck at bottom right")
    assert not item.right("stain at top left")
    assert not item.right("no defect")
    normal = GoldItem(
        image="images/b.png",
        source="file:///b.png",
        labelled=False,
        kind=None,
        box=None,
        where=None,
        problem="no defect",
        held_out=False,
    )
    assert normal.right("no defect") and not normal.right("speck at top left")
