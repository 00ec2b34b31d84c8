"""Real image-text data that installs offline: the emoji of Noto Color Emoji, named and
described by people in many languages, grouped by Unicode.

Sources (Debian packages): `fonts-noto-color-emoji` (the drawings: a color font whose one
bitmap strike Pillow renders at 109 px), `unicode-cldr-core` (CLDR's annotations: each
emoji's name and keywords in more than 100 languages; `annotationsDerived` for skin-tone and
gender variants) and `unicode-data` (`emoji-test.txt`: every fully-qualified emoji with its
group and subgroup).

Variants of one emoji (skin tones, genders: "woman health worker: dark skin tone") share a
*base* (`base_of`), and a split holds whole bases, so no test image has a near twin in
training. `write_corpus` writes one WebDataset folder per split, which `weft curate` reads
like any other input. A record's key (`key`, read back by `emoji_of`) names its emoji and
caption language; this module holds that format, which weft.quality reads.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from weft.data.corpus import (
    Manifest,
    check_percents,
    hashed,
    require,
    sample,
    split_of,
    with_english,
    write_shards,
)
from weft.specs import SpecError, StorageSpec

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLDR = Path("/usr/share/unicode/cldr/common")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
PACKAGES = {FONT: "fonts-noto-color-emoji", CLDR: "unicode-cldr-core", EMOJI_TEST: "unicode-data"}
STRIKE = 109  # the font's one bitmap size
CANVAS = (140, 132)  # the 136 x 128 strike with a 2-pixel margin
# Languages whose names and keywords every record carries (CLDR locale codes), English first.
LANGUAGES = (
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "ru", "tr", "ar", "hi", "ja", "ko", "zh",
)  # fmt: skip
# Subgroups held out whole: no image of them is trained on (zero-shot classes). Chosen across
# groups, each with several bases and a name a caption could hint at.
HELD_OUT = (
    "face-hand", "cat-face", "animal-bird", "plant-flower", "food-fruit", "food-sweet",
    "transport-air", "sky & weather", "sport", "musical-instrument", "office", "tool",
)  # fmt: skip
SKIN_TONES = range(0x1F3FB, 0x1F400)
GENDER_SIGNS = ("\u200d\u2640\ufe0f", "\u200d\u2642\ufe0f", "\u200d\u2640", "\u200d\u2642")
# Gendered people drawn as the neutral one, for the base.
NEUTRAL = {"👨": "🧑", "👩": "🧑", "👦": "🧒", "👧": "🧒", "👴": "🧓", "👵": "🧓"}


@dataclass(frozen=True)
class Emoji:
    """One fully-qualified emoji: its characters, English name, group and subgroup."""

    chars: str
    name: str
    group: str
    subgroup: str

    @property
    def base(self) -> str:
        return base_of(self.chars)


def base_of(chars: str) -> str:
    """The emoji its variants share: without skin tones, gender signs and the variation
    selector, gendered people as the neutral one."""
    for sign in GENDER_SIGNS:
        chars = chars.replace(sign, "")
    kept = (c for c in chars if ord(c) not in SKIN_TONES and c != "\ufe0f")
    return "".join(NEUTRAL.get(c, c) for c in kept)


@cache
def catalogue() -> tuple[Emoji, ...]:
    """Every fully-qualified emoji of emoji-test.txt, in its order."""
    require(PACKAGES, EMOJI_TEST)
    group = subgroup = ""
    found = []
    for line in EMOJI_TEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif "; fully-qualified" in line:
            points, comment = line.split(";", 1)[0], line.split("#", 1)[1]
            chars = "".join(chr(int(p, 16)) for p in points.split())
            name = comment.strip().split(" ", 2)[2]  # "😀 E1.0 grinning face"
            found.append(Emoji(chars, name, group, subgroup))
    return tuple(found)


@dataclass(frozen=True)
class Annotation:
    """An emoji in one language: the name a screen reader says, and its keywords."""

    name: str
    keywords: tuple[str, ...]


@cache
def cldr_annotations(language: str) -> dict[str, Annotation]:
    """CLDR's names and keywords in `language`, by emoji (without variation selectors), the
    variants' (annotationsDerived) included."""
    require(PACKAGES, CLDR)
    names: dict[str, str] = {}
    words: dict[str, tuple[str, ...]] = {}
    for folder in ("annotations", "annotationsDerived"):
        path = CLDR / folder / f"{language}.xml"
        if not path.exists():
            if folder == "annotationsDerived":  # some locales name no variants
                continue
            raise SpecError(f"languages: CLDR has no annotations for {language!r} ({path})")
        text = path.read_text(encoding="utf-8")
        for cp, kind, value in re.findall(
            r'<annotation cp="([^"]+)"( type="tts")?>([^<]+)</annotation>', text
        ):
            value = html.unescape(value)
            if kind:
                names[cp] = value
            else:
                words[cp] = tuple(w.strip() for w in value.split("|") if w.strip())
    return {cp: Annotation(name, words.get(cp, ())) for cp, name in names.items()}


def render(chars: str) -> Image.Image:
    """The emoji as a transparent RGBA drawing (transparent pixels are black, as fonts leave
    them)."""
    img = Image.new("RGBA", CANVAS, (0, 0, 0, 0))
    ImageDraw.Draw(img).text((2, 2), chars, font=font(), embedded_color=True)
    return img


@cache
def font() -> ImageFont.FreeTypeFont:
    require(PACKAGES, FONT)
    return ImageFont.truetype(str(FONT), STRIKE)


def caption(annotation: Annotation) -> str:
    """A record's caption: the name, then the keywords that do not repeat it."""
    extra = [k for k in annotation.keywords if k.lower() != annotation.name.lower()]
    return annotation.name + (f": {', '.join(extra)}" if extra else "")


def picture(chars: str, size: int) -> bytes | None:
    """The emoji drawn on white, `size` pixels square, as PNG; None if the font draws nothing."""
    drawing = render(chars)
    box = drawing.getbbox()
    if not box:
        return None
    white = Image.new("RGBA", drawing.size, (255, 255, 255, 255))
    flat = (
        Image.alpha_composite(white, drawing)
        .convert("RGB")
        .resize((size, size), Image.Resampling.LANCZOS)
    )
    out = io.BytesIO()
    flat.save(out, format="PNG", optimize=True)
    return out.getvalue()


def key(chars: str, language: str) -> str:
    """A record's key: the emoji's code points in hex and the caption's language,
    `👋🏽`, "de" → `1f44b-1f3fd_de`."""
    return f"{'-'.join(f'{ord(c):x}' for c in chars)}_{language}"


def emoji_of(record_key: str) -> tuple[str, str]:
    """A record key's emoji and caption language: `1f44b-1f3fd_de` → ("👋🏽", "de")."""
    points, _, language = record_key.rpartition("_")
    try:
        return "".join(chr(int(p, 16)) for p in points.split("-")), language
    except ValueError:
        raise SpecError(
            f"key {record_key!r} is not an emoji corpus key (<code points>_<lang>)"
        ) from None


def captioned_in(emoji: Emoji, languages: list[str], per_emoji: int) -> list[str]:
    """English and `per_emoji - 1` other languages, chosen by a hash of the emoji, so every
    language is trained on and each image appears a few times, not once per language."""
    others = languages[1:]
    start = hashed(emoji.chars)
    return [languages[0], *(others[(start + i) % len(others)] for i in range(per_emoji - 1))]


def records(
    languages: list[str],
    per_emoji: int,
    size: int,
    val_percent: int,
    test_percent: int,
    manifest: Manifest,
) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """(split, key, {png, json}) for each emoji the font draws and CLDR names in English: a
    record per caption language (`captioned_in`), each sidecar holding the names and keywords
    in every language."""
    named = {lang: cldr_annotations(lang) for lang in languages}
    for emoji in catalogue():
        cp = emoji.chars.replace("\ufe0f", "")
        if cp not in named["en"]:
            manifest.skip("no_english_name")
            continue
        png = picture(emoji.chars, size)
        if png is None:
            manifest.skip("not_drawn")
            continue
        split = split_of(emoji.base, emoji.subgroup in HELD_OUT, val_percent, test_percent)
        manifest.items[split] += 1
        meta = {
            "emoji": emoji.chars,
            "base": emoji.base,
            "group": emoji.group,
            "subgroup": emoji.subgroup,
            "split": split,
            "names": {lang: named[lang][cp].name for lang in languages if cp in named[lang]},
            "keywords": {
                lang: list(named[lang][cp].keywords) for lang in languages if cp in named[lang]
            },
        }
        for lang in captioned_in(emoji, languages, per_emoji):
            if cp not in named[lang]:
                continue
            body = meta | {"caption": caption(named[lang][cp]), "language": lang}
            yield split, key(emoji.chars, lang), sample(png, body)


def write_corpus(
    out: str,
    languages: Iterable[str] = LANGUAGES,
    per_emoji: int = 4,
    size: int = 64,
    val_percent: int = 10,
    test_percent: int = 10,
    shard_records: int = 2000,
    storage_spec: StorageSpec | None = None,
) -> Manifest:
    """Write the corpus under `out` (`weft.data.corpus`: WebDataset shards per split, key.png
    + key.json); the manifest, which names the languages and the held-out subgroups."""
    languages = with_english(languages, per_emoji, "per_emoji")
    check_percents(val_percent, test_percent)
    manifest = Manifest("emoji", about={"languages": languages, "held_out": list(HELD_OUT)})
    chosen = records(languages, per_emoji, size, val_percent, test_percent, manifest)
    return write_shards(out, chosen, manifest, shard_records, storage_spec)
