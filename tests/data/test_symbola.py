"""The Symbola reader: which symbols are drawings, what they are called, and that an emoji
keeps the emoji corpus's split, so neither drawing of a test emoji is trained on."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from weft.data import emoji, symbola
from weft.data.corpus import Manifest, split_of
from weft.data.symbola import Symbol, captions, picture, symbols
from weft.specs import SpecError


@pytest.fixture(scope="module")
def drawn() -> dict[str, Symbol]:
    return {s.char: s for s in symbols()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("symbola")
    manifest = symbola.write_corpus(str(out), ["en", "de", "ja"], per_symbol=2, size=32)
    records = []
    for shard in out.glob("*/shard-*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    records.append(json.loads(data) | {"_folder": shard.parent.name})
    return manifest, records


def test_pictures_are_symbols_and_notation_is_left_out(drawn: dict[str, Symbol]) -> None:
    assert drawn["🐈"].name == "cat"
    assert drawn["🐈"].block == "Miscellaneous Symbols and Pictographs"
    assert drawn["☂"].name == "umbrella"
    assert "⠿" not in drawn  # a Braille pattern
    assert "╬" not in drawn  # box drawing
    assert "A" not in drawn and "∑" not in drawn  # letters and maths are not So
    assert 2500 < len(drawn) < 4000


def test_a_symbol_is_drawn_black_on_white() -> None:
    image = Image.open(io.BytesIO(picture("☂", 64) or b""))
    assert image.size == (64, 64) and image.mode == "RGB"
    lightest, darkest = image.convert("L").getextrema()
    assert lightest < 40 and darkest == 255
    assert picture("\u200b", 64) is None  # a zero-width space draws nothing


def test_captions_carry_cldr_and_unicode_names(drawn: dict[str, Symbol]) -> None:
    cat = captions(drawn["🐈"], ["en", "de"], per_symbol=2)
    assert cat["en"].startswith("cat: ") and "pet" in cat["en"]
    assert cat["de"].startswith("Katze")
    chess = captions(drawn["♞"], ["en", "de"], per_symbol=2)
    assert chess["en"].startswith("black chess knight")
    arrow = next(s for s in drawn.values() if s.name == "heavy wedge-tailed rightwards arrow")
    assert captions(arrow, ["en", "de"], per_symbol=2) == {
        "en": "heavy wedge-tailed rightwards arrow: dingbats"
    }


def test_an_emoji_keeps_the_emoji_corpus_split_and_held_out_subgroups(
    corpus: tuple[Manifest, list[dict[str, Any]]],
) -> None:
    manifest, records = corpus
    by_char = {e.chars.replace("\ufe0f", ""): e for e in emoji.catalogue()}
    shared = [r for r in records if r["char"] in by_char]
    assert len(shared) > 1000
    for r in shared:
        e = by_char[r["char"]]
        assert r["split"] == r["_folder"]
        assert r["split"] == split_of(e.base, e.subgroup in emoji.HELD_OUT, 10, 10)
    assert {r["subgroup"] for r in records if r["split"] == "heldout"} <= set(emoji.HELD_OUT)
    assert {r["language"] for r in records} == {"en", "de", "ja"}
    assert sum(manifest.records.values()) == len(records)
    assert all(r["uri"].startswith("file:///usr/share/fonts/") for r in records[::50])


def test_a_missing_font_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "Symbola_hint.ttf"
    monkeypatch.setattr(symbola, "FONT", missing)
    monkeypatch.setitem(symbola.PACKAGES, missing, "fonts-symbola")
    with pytest.raises(SpecError, match="apt-get install fonts-symbola"):
        symbols()
