"""What a record of the offline corpora shows, read from its key: the *item* relevance is
counted in. A drawing of a character (a Noto emoji, its skin-tone and gender variants, or
Symbola's glyph of it) is the character's base emoji, so both drawing styles of a cat answer
"cat"; an openclipart drawing is `openclipart/<path>` (its key without the caption kind).
Its *group* is the subject unit the corpora hold out whole: an emoji's subgroup (for
Symbola's glyph of an emoji too), `symbola:<block>` for another symbol, and the folder of an
openclipart drawing.

Keys are written by `weft.data.emoji`, `weft.data.symbola` and `weft.data.openclipart`;
this module is where other stages read them.
"""

from __future__ import annotations

from functools import cache

from weft.captions import parts
from weft.data.emoji import base_of, catalogue, cldr_annotations, emoji_of
from weft.data.symbola import block_of

CLIPART, SYMBOLA = "openclipart/", "symbola/"


def item_of(key: str) -> str:
    """The item a corpus record shows: `1f408_de` and `symbola/1f408/en` → "🐈",
    `openclipart/animals/bat_x_/name` → "openclipart/animals/bat_x_"."""
    return key.rpartition("/")[0] if key.startswith(CLIPART) else base_of(_char_of(key))


def gold_item(entry: str) -> str:
    """The item a gold list's entry names: an openclipart path as written, a character as
    its base emoji."""
    return entry if entry.startswith(CLIPART) else base_of(entry)


def group_of(key: str) -> str:
    """`1f408_de` → "animal-mammal", `symbola/2735/en` → "symbola:Dingbats",
    `openclipart/animals/birds/owl_x_/name` → "openclipart/animals/birds"."""
    if key.startswith(CLIPART):
        return key.rsplit("/", 2)[0]
    char = _char_of(key)
    if key.startswith(SYMBOLA):
        return _subgroups().get(char) or f"symbola:{block_of(ord(char))}"
    return _subgroups().get(char, "")


def in_group(group: str, named: str) -> bool:
    """Whether `group` is the group `named` or a folder under it."""
    return group == named or group.startswith(named + "/")


def language_of(key: str) -> str | None:
    """The caption language a key names (emoji and Symbola keys); None for openclipart's."""
    if key.startswith(CLIPART):
        return None
    if key.startswith(SYMBOLA):
        return key.split("/")[2]
    return emoji_of(key)[1]


def names_in_english(key: str) -> bool:
    """Whether a record's caption names its drawing in English: an English emoji or Symbola
    caption, or an openclipart drawing's title (`.../name`)."""
    return key.endswith("/name") if key.startswith(CLIPART) else language_of(key) == "en"


def references(key: str, english: str) -> list[str]:
    """What a person would call a record's drawing in English: CLDR's name and keywords of a
    character that has them, else the name and keywords of `english`, its English caption."""
    if not key.startswith(CLIPART):
        found = cldr_annotations("en").get(_char_of(key).replace("\ufe0f", ""))
        if found:
            return [found.name, *found.keywords]
    name, keywords = parts(english)
    return [name, *keywords] if english else []


def _char_of(key: str) -> str:
    """The character an emoji or Symbola key draws: `1f408_de`, `symbola/1f408/en` → "🐈"."""
    return chr(int(key.split("/")[1], 16)) if key.startswith(SYMBOLA) else emoji_of(key)[0]


@cache
def _subgroups() -> dict[str, str]:
    """Each emoji's subgroup, by its characters and by its base (a Symbola glyph's char)."""
    found: dict[str, str] = {}
    for emoji in catalogue():
        found.setdefault(emoji.chars, emoji.subgroup)
        found.setdefault(emoji.chars.replace("\ufe0f", ""), emoji.subgroup)
    return found
