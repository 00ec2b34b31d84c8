"""Symbola: monochrome drawings of the emoji and of thousands of other symbols, named by
Unicode: a second drawing style for the concepts of the emoji corpus, and many more.

Sources (Debian packages): `fonts-symbola` (George Douros's font, "free for any use") and
`unicode-data` (`UnicodeData.txt`: every code point's name and category; `Blocks.txt`);
`unicode-cldr-core` names and describes the symbols that are emoji (and some others) in
many languages.

A drawing is every "other symbol" (category So) the font draws, outside the blocks that are
notation rather than pictures (Braille, box drawing, hexagrams, enclosed letters: `NOTATION`).
Each gives an English record ("name: keyword, keyword", CLDR's name where it has one, else
Unicode's) and, where CLDR names it, records in other languages. A symbol that is an emoji
takes the emoji corpus's split (the same hash of the same base) and is held out with its
subgroup, so neither drawing style of a test emoji is trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from weft.data import emoji
from weft.data.corpus import (
    Manifest,
    check_percents,
    hashed,
    on_white,
    require,
    sample,
    split_of,
    with_english,
    write_shards,
)
from weft.specs import StorageSpec

FONT = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")
UNICODE = Path("/usr/share/unicode")
UNICODE_DATA, BLOCKS = UNICODE / "UnicodeData.txt", UNICODE / "Blocks.txt"
PACKAGES = {FONT: "fonts-symbola", UNICODE_DATA: "unicode-data", BLOCKS: "unicode-data"}
LICENSE = "Symbola (George Douros): fonts are free for any use"
NOTATION = {
    "Braille Patterns", "Byzantine Musical Symbols", "Ancient Greek Musical Notation",
    "Box Drawing", "Block Elements", "Tai Xuan Jing Symbols", "Yijing Hexagram Symbols",
    "Enclosed Alphanumerics", "Enclosed Alphanumeric Supplement", "Enclosed Ideographic Supplement",
    "Enclosed CJK Letters and Months", "Control Pictures", "Optical Character Recognition",
    "Ancient Greek Numbers", "Aegean Numbers", "Number Forms", "Letterlike Symbols", "Specials",
    "Coptic", "Cyrillic", "Latin-1 Supplement",
}  # fmt: skip
DRAWN_AT = 256  # glyphs are drawn this many pixels high, then cropped and shrunk


@dataclass(frozen=True)
class Symbol:
    """One drawable code point: its character, Unicode name and block."""

    char: str
    name: str
    block: str

    @property
    def hex(self) -> str:
        return f"{ord(self.char):x}"


@cache
def _blocks() -> tuple[tuple[int, int, str], ...]:
    found = []
    for line in BLOCKS.read_text(encoding="utf-8").splitlines():
        body = line.split("#", 1)[0].strip()
        if body:
            span, name = body.split(";")
            first, last = span.split("..")
            found.append((int(first, 16), int(last, 16), name.strip()))
    return tuple(found)


def block_of(point: int) -> str:
    return next((name for first, last, name in _blocks() if first <= point <= last), "")


def symbols() -> list[Symbol]:
    """Every So code point the font maps, outside `NOTATION`, in code point order."""
    from fontTools.ttLib import TTFont  # read once, for the font's character map

    require(PACKAGES, FONT, UNICODE_DATA, BLOCKS)
    with TTFont(FONT, lazy=True) as ttf:
        mapped = set(ttf.getBestCmap())
    found = []
    for line in UNICODE_DATA.read_text(encoding="utf-8").splitlines():
        point_hex, name, category = line.split(";")[:3]
        point = int(point_hex, 16)
        if category == "So" and point in mapped and block_of(point) not in NOTATION:
            found.append(Symbol(chr(point), name.lower(), block_of(point)))
    return found


@cache
def font() -> ImageFont.FreeTypeFont:
    require(PACKAGES, FONT)
    return ImageFont.truetype(str(FONT), DRAWN_AT)


def picture(char: str, size: int) -> bytes | None:
    """The symbol drawn black on white, `size` pixels square, as PNG; None if it draws
    nothing."""
    left, top, right, bottom = (round(edge) for edge in font().getbbox(char))
    if right <= left or bottom <= top:
        return None
    drawing = Image.new("RGBA", (right - left + 4, bottom - top + 4), (0, 0, 0, 0))
    ImageDraw.Draw(drawing).text((2 - left, 2 - top), char, font=font(), fill=(0, 0, 0, 255))
    return on_white(drawing, size)


def captions(symbol: Symbol, languages: list[str], per_symbol: int) -> dict[str, str]:
    """The symbol's caption by language: English always (CLDR's name and keywords, Unicode's
    name among them; else Unicode's name and the block), and up to `per_symbol - 1` others
    CLDR names it in, chosen by a hash of the symbol."""
    named = {
        lang: emoji.cldr_annotations(lang)[symbol.char]
        for lang in languages
        if symbol.char in emoji.cldr_annotations(lang)
    }
    english = named.get("en")
    if english:
        keywords = (*english.keywords, symbol.name)
        found = {"en": emoji.caption(emoji.Annotation(english.name, keywords))}
    else:
        found = {"en": f"{symbol.name}: {symbol.block.lower()}"}
    others = [lang for lang in languages if lang != "en" and lang in named]
    start = hashed(symbol.char)
    for i in range(min(per_symbol - 1, len(others))):
        lang = others[(start + i) % len(others)]
        found[lang] = emoji.caption(named[lang])
    return found


def records(
    languages: list[str], per_symbol: int, size: int, val_percent: int, test_percent: int,
    manifest: Manifest,
) -> Iterator[tuple[str, str, dict[str, bytes]]]:  # fmt: skip
    """(split, key, {png, json}) for each symbol the font draws: a record per caption
    language, each sidecar holding the symbol's Unicode name, block and, for an emoji, its
    subgroup."""
    subgroups = {e.chars.replace("\ufe0f", ""): e.subgroup for e in emoji.catalogue()}
    for symbol in symbols():
        png = picture(symbol.char, size)
        if png is None:
            manifest.skip("not_drawn")
            continue
        subgroup = subgroups.get(symbol.char, "")
        held_out = subgroup in emoji.HELD_OUT
        split = split_of(emoji.base_of(symbol.char), held_out, val_percent, test_percent)
        manifest.items[split] += 1
        meta = {
            "source": "symbola",
            "item": f"symbola/{symbol.hex}",
            "split": split,
            "char": symbol.char,
            "codepoint": f"U+{ord(symbol.char):04X}",
            "unicode_name": symbol.name,
            "block": symbol.block,
            "subgroup": subgroup,
            "license": LICENSE,
            "uri": f"{FONT.as_uri()}#U+{ord(symbol.char):04X}",
        }
        for lang, caption in captions(symbol, languages, per_symbol).items():
            body = meta | {"caption": caption, "language": lang}
            yield split, key(symbol, lang), sample(png, body)


def key(symbol: Symbol, language: str) -> str:
    """A record's key: `symbola/<code point in hex>/<language>` (`symbola/1f408/en`)."""
    return f"symbola/{symbol.hex}/{language}"


def write_corpus(
    out: str,
    languages: Iterable[str] = emoji.LANGUAGES,
    per_symbol: int = 2,
    size: int = 64,
    val_percent: int = 10,
    test_percent: int = 10,
    shard_records: int = 2000,
    storage_spec: StorageSpec | None = None,
) -> Manifest:
    """Write the corpus under `out` (`weft.data.corpus`); the manifest, which names the
    languages and the held-out emoji subgroups."""
    languages = with_english(languages, per_symbol, "per_symbol")
    check_percents(val_percent, test_percent)
    about = {"languages": languages, "held_out": list(emoji.HELD_OUT)}
    manifest = Manifest("symbola", about=about)
    chosen = records(languages, per_symbol, size, val_percent, test_percent, manifest)
    return write_shards(out, chosen, manifest, shard_records, storage_spec)
