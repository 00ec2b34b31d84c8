"""Every corpus's keys read back as the item they show."""

from __future__ import annotations

import pytest

from weft.data import emoji, symbola
from weft.data.items import gold_item, item_of
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
