"""Every corpus's keys read back as the item they show, the group it is held out with, its
language and its English names."""

from __future__ import annotations

import pytest

from weft.data import emoji, symbola
from weft.data.items import (
    gold_item,
    group_of,
    in_group,
    item_of,
    language_of,
    names_in_english,
    references,
)
from weft.data.openclipart import key as clipart_key
from weft.data.symbola import Symbol


@pytest.mark.parametrize(
    ("record_key", "item"),
    [
        (emoji.key("🐈", "de"), "🐈"),
        (emoji.key("👩🏽\u200d⚕️", "en"), "🧑\u200d⚕"),  # a variant is its base
        (symbola.key(Symbol("🐈", "cat", "Miscellaneous Symbols and Pictographs"), "en"), "🐈"),
        (symbola.key(Symbol("♞", "black chess knight", "Miscellaneous Symbols"), "en"), "♞"),
        (clipart_key("people/school_hallway_gerald_g._01", "name"),
         "openclipart/people/school_hallway_gerald_g-_01"),
        (clipart_key("people/school_hallway_gerald_g._01", "description"),
         "openclipart/people/school_hallway_gerald_g-_01"),
    ],
)  # fmt: skip
def test_a_key_reads_back_as_its_item(record_key: str, item: str) -> None:
    assert item_of(record_key) == item


def test_a_gold_entry_names_the_same_item() -> None:
    assert gold_item("❤️") == item_of(emoji.key("❤️", "en")) == "❤"
    assert (
        gold_item("openclipart/animals/bat_orlando_karam_")
        == "openclipart/animals/bat_orlando_karam_"
    )


@pytest.mark.parametrize(
    ("record_key", "group", "language"),
    [
        (emoji.key("🐦", "de"), "animal-bird", "de"),
        (symbola.key(Symbol("🐦", "bird", "Miscellaneous Symbols and Pictographs"), "fr"),
         "animal-bird", "fr"),  # an emoji's glyph is held out with the emoji
        (symbola.key(Symbol("♞", "black chess knight", "Miscellaneous Symbols"), "en"),
         "symbola:Miscellaneous Symbols", "en"),
        (clipart_key("animals/birds/owl_01", "description"), "openclipart/animals/birds", None),
    ],
)  # fmt: skip
def test_a_key_reads_back_as_its_group_and_language(
    record_key: str, group: str, language: str | None
) -> None:
    assert (group_of(record_key), language_of(record_key)) == (group, language)


def test_a_group_holds_its_subfolders_but_not_a_namesake() -> None:
    assert in_group("openclipart/animals/birds/parrots", "openclipart/animals/birds")
    assert in_group("animal-bird", "animal-bird")
    assert not in_group("openclipart/animals/birdseed", "openclipart/animals/birds")


def test_english_names_come_from_cldr_for_characters_else_from_the_english_caption() -> None:
    cat = references(emoji.key("🐈", "de"), "")
    assert cat[0] == "cat" and "pet" in cat
    assert references(symbola.key(Symbol("♞", "black chess knight", "x"), "en"), "") == []
    owl = clipart_key("animals/birds/owl_01", "name")
    assert references(owl, "Snowy Owl: bird, night") == ["Snowy Owl", "bird", "night"]
    assert names_in_english(owl) and not names_in_english(owl.replace("/name", "/description"))
    assert names_in_english(emoji.key("🐈", "en")) and not names_in_english(emoji.key("🐈", "de"))
