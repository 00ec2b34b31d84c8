"""What a record of the offline corpora shows, read from its key: the *item* relevance is
counted in. A drawing of a character (a Noto emoji, its skin-tone and gender variants, or
Symbola's glyph of it) is the character's base emoji, so both drawing styles of a cat answer
"cat"; an openclipart drawing is `openclipart/<path>` (its key without the caption kind).

Keys are written by `weft.data.emoji`, `weft.data.symbola` and `weft.data.openclipart`;
this module is where other stages read them.
"""

from __future__ import annotations

from weft.data.emoji import base_of, emoji_of

CLIPART, SYMBOLA = "openclipart/", "symbola/"


def item_of(key: str) -> str:
    """The item a corpus record shows: `1f408_de` and `symbola/1f408/en` → "🐈",
    `openclipart/animals/bat_x_/name` → "openclipart/animals/bat_x_"."""
    if key.startswith(CLIPART):
        return key.rpartition("/")[0]
    if key.startswith(SYMBOLA):
        return base_of(chr(int(key.split("/")[1], 16)))
    return base_of(emoji_of(key)[0])


def gold_item(entry: str) -> str:
    """The item a gold list's entry names: an openclipart path as written, a character as
    its base emoji."""
    return entry if entry.startswith(CLIPART) else base_of(entry)
