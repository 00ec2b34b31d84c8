"""The openclipart reader, on the installed drawings: the words kept are about the drawing
(no collection titles, authors or tagging noise), splits hold whole series and held-out
folders, and huge drawings are read on purpose."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from weft.data import openclipart
from weft.data.corpus import Manifest
from weft.data.openclipart import Drawing, catalogue, describe, read_svg, split_for, words
from weft.specs import SpecError

BEAR = "animals/mammals/bears/orso_architetto_francesc_01"
SWAN = "animals/birds/cigno_architetto_frances_01"  # a held-out folder
STARS = ("shapes/stars/star_60pt13step", "shapes/stars/star_65pt16step")  # 1,378 "gramastar"s
ICON = "computer/icons/flat-theme/action/multiline"  # "Part of the Flat Icon Collection"
MAP = "geography/extremadura_01"  # a description worth keeping
LINKED = "recreation/music/quaver_nathan_eady_01"  # description "HASH(0x…)", held out
BLANK = "electronics/bulb/light_bulb_karl_bartel_01"  # its PNG is wholly transparent
SAMPLE = (BEAR, SWAN, *STARS, ICON, MAP, LINKED, BLANK)


@pytest.fixture(scope="module")
def drawings() -> dict[str, Drawing]:
    return {d.path: d for d in catalogue(Manifest("openclipart"))}


@pytest.fixture(scope="module")
def titles(drawings: dict[str, Drawing]) -> Counter[str]:
    return Counter(words(d.title).lower() for d in drawings.values())


def test_the_svg_metadata_is_read_as_its_author_wrote_it() -> None:
    bear = read_svg(openclipart.SVG / f"{BEAR}.svg", BEAR)
    assert bear.title == "Orso"
    assert "bear" in bear.subjects and "architetto francesco rollandin" in bear.subjects
    assert "Architetto Francesco Rollandin" in bear.creator
    assert bear.license == "http://web.resource.org/cc/PublicDomain"
    assert bear.folder == "animals/mammals/bears" and not bear.held_out


def test_the_caption_keeps_words_about_the_drawing(
    drawings: dict[str, Drawing], titles: Counter[str]
) -> None:
    bear = describe(drawings[BEAR], titles)
    assert bear.name == "Orso"  # a title naming this drawing
    assert "bear" in bear.keywords and "bears" in bear.keywords and "mammals" in bear.keywords
    assert not any("architetto" in k or "rollandin" in k for k in bear.keywords)
    assert bear.caption.startswith("Orso: ")
    # a collection's title gives way to the file name, without the numbers
    assert titles["gramastar"] > 1000 and describe(drawings[STARS[0]], titles).name == "star"
    icon = describe(drawings[ICON], titles)
    assert icon.name == "multiline" and not any("theme" in k for k in icon.keywords)
    assert "hash" not in icon.keywords and "icons" not in icon.keywords
    assert describe(drawings[MAP], titles).description == "a simple map of extremadura, enjoy it!"
    assert drawings[LINKED].description.startswith("HASH(0x")
    assert describe(drawings[LINKED], titles).description == ""


def test_a_series_shares_its_split_and_held_out_folders_are_held_out(
    drawings: dict[str, Drawing], titles: Counter[str]
) -> None:
    splits_of_group = defaultdict(set)
    for d in drawings.values():
        text = describe(d, titles)
        split = split_for(d, text, 10, 10)
        assert (split == "heldout") == d.held_out
        splits_of_group[(d.folder, text.name.lower())].add(split)
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert len(splits_of_group[("shapes/stars", "star")]) == 1
    counted = Counter(next(iter(s)) for s in splits_of_group.values())
    assert counted["heldout"] > 50 and counted["test"] > 100 and counted["val"] > 100
    assert drawings[SWAN].held_out


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample drawings copied to a folder laid out like the packages."""
    for path in SAMPLE:
        for kind in ("png", "svg"):
            target = tmp_path / kind / f"{path}.{kind}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(openclipart.ROOT / kind / f"{path}.{kind}", target)
    png, svg = tmp_path / "png", tmp_path / "svg"
    monkeypatch.setattr(openclipart, "PNG", png)
    monkeypatch.setattr(openclipart, "SVG", svg)
    monkeypatch.setattr(openclipart, "PACKAGES", {png: "openclipart-png", svg: "openclipart-svg"})
    return tmp_path


def test_the_corpus_holds_an_image_and_a_sidecar_per_caption(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (installed / "svg" / f"{ICON}.svg").write_text("<svg")  # broken: counted, not fatal
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)  # every drawing is larger
    manifest = openclipart.write_corpus(str(tmp_path / "out"), size=40)
    assert Image.MAX_IMAGE_PIXELS == 2_000  # raised for the package's files only
    assert manifest.skipped == {"bad_svg": 1, "blank": 1}
    assert sum(manifest.items.values()) == len(SAMPLE) - 2
    records = {}
    for shard in (tmp_path / "out").glob("*/shard-*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                records[member.name] = (shard.parent.name, data)
    assert sum(manifest.records.values()) == len(records) // 2
    split, sidecar = records[f"openclipart/{BEAR}/name.json"]
    meta = json.loads(sidecar)
    assert split == meta["split"] and meta["caption"].startswith("Orso: ")
    assert meta["uri"] == (installed / "png" / f"{BEAR}.png").as_uri()
    assert meta["license"].endswith("PublicDomain") and meta["item"] == BEAR
    image = Image.open(io.BytesIO(records[f"openclipart/{BEAR}/name.png"][1]))
    assert image.size == (40, 40) and image.mode == "RGB"
    assert records[f"openclipart/{SWAN}/name.json"][0] == "heldout"
    description = json.loads(records[f"openclipart/{MAP}/description.json"][1])
    assert description["caption"] == description["description"]
    assert f"openclipart/{LINKED}/description.json" not in records


def test_a_missing_package_is_named(installed: Path) -> None:
    shutil.rmtree(installed / "svg")
    with pytest.raises(SpecError, match="apt-get install openclipart-svg"):
        catalogue(Manifest("openclipart"))
