"""The emoji corpus: splits hold whole base emoji, held-out subgroups are held out, every
record has a caption, and every language is present."""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from weft.data import emoji
from weft.data.emoji import HELD_OUT, LANGUAGES, Manifest, base_of, write_corpus
from weft.specs import SpecError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[dict[str, Any]]]:
    """The whole corpus as `weft data emoji` writes it, and every record's sidecar."""
    out = tmp_path_factory.mktemp("emoji")
    manifest = write_corpus(str(out))
    records = []
    for shard in sorted(out.glob("*/shard-*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
        for name, data in members.items():
            if name.endswith(".json"):
                key = name.removesuffix(".json")
                body = json.loads(data) | {"_key": key, "_folder": shard.parent.name}
                body["_png"] = members[f"{key}.png"]
                records.append(body)
    return manifest, records


@pytest.mark.parametrize(
    ("chars", "base"),
    [
        ("👍🏿", "👍"),  # a skin tone
        ("🙅\u200d♂️", "🙅"),  # a gender sign
        ("👩🏽\u200d⚕️", "🧑\u200d⚕"),  # a woman health worker, medium skin tone
        ("👨", "🧑"),
        ("❤️", "❤"),  # the variation selector
    ],
)
def test_variants_share_their_base(chars: str, base: str) -> None:
    assert base_of(chars) == base


def test_every_split_holds_whole_bases_and_held_out_subgroups_only_in_heldout(
    corpus: tuple[Manifest, list[dict[str, Any]]],
) -> None:
    _, records = corpus
    splits_of_base = defaultdict(set)
    for r in records:
        assert r["_folder"] == r["split"]
        splits_of_base[r["base"]].add(r["split"])
        assert (r["split"] == "heldout") == (r["subgroup"] in HELD_OUT)
    assert all(len(s) == 1 for s in splits_of_base.values())
    variants = [b for b in splits_of_base if sum(r["base"] == b for r in records) > 20]
    assert len(variants) > 50  # skin tones and genders do share bases


def test_every_record_has_a_caption_an_image_and_names_in_its_language(
    corpus: tuple[Manifest, list[dict[str, Any]]],
) -> None:
    manifest, records = corpus
    assert sum(manifest.records.values()) == len(records)
    for r in records[::97]:
        assert r["caption"].startswith(r["names"][r["language"]])
        assert r["_key"].endswith(f"_{r['language']}") and "." not in r["_key"]
        image = Image.open(io.BytesIO(r["_png"]))
        assert image.size == (64, 64) and image.mode == "RGB"
    assert all(r["caption"] and r["names"]["en"] for r in records)
    smile = next(r for r in records if r["emoji"] == "😂" and r["language"] == "en")
    assert smile["caption"].startswith("face with tears of joy: ")
    assert smile["names"]["de"] == "Gesicht mit Freudentränen"


def test_every_language_is_captioned_and_each_emoji_is_in_english(
    corpus: tuple[Manifest, list[dict[str, Any]]],
) -> None:
    manifest, records = corpus
    assert manifest.about["languages"] == list(LANGUAGES)
    by_language = defaultdict(int)
    for r in records:
        by_language[r["language"]] += 1
    assert set(by_language) == set(LANGUAGES)
    assert min(by_language.values()) > 300
    english = {r["emoji"] for r in records if r["language"] == "en"}
    assert english == {r["emoji"] for r in records}
    assert sum(manifest.items.values()) == len(english) > 3000
    assert manifest.items["heldout"] > 150 and manifest.items["test"] > 150


def test_a_missing_package_and_bad_options_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError, match="languages: CLDR has no annotations for 'xx'"):
        write_corpus(str(tmp_path / "a"), ["en", "xx"], per_emoji=2)
    with pytest.raises(SpecError, match="per_emoji"):
        write_corpus(str(tmp_path / "b"), ["en", "de"], per_emoji=3)
    monkeypatch.setattr(emoji, "EMOJI_TEST", tmp_path / "emoji-test.txt")
    monkeypatch.setitem(emoji.PACKAGES, tmp_path / "emoji-test.txt", "unicode-data")
    emoji.catalogue.cache_clear()
    try:
        with pytest.raises(SpecError, match="apt-get install unicode-data"):
            emoji.catalogue()
    finally:
        emoji.catalogue.cache_clear()
