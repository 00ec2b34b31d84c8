"""Openclipart: about 8,000 public-domain drawings, each with the words its author gave it.

Sources (Debian packages): `openclipart-png` (the drawings, rendered) and `openclipart-svg`
(the same drawings as SVG, whose RDF metadata holds a title, sometimes a description, a bag
of keywords, the author and the licence). The folders sort them by subject
(`animals/mammals/bears`).

The metadata is what people wrote, noisy as such: collection titles shared by hundreds of
drawings ("Part of the Flat Icon Collection", "gramastar"), authors' names among the keywords
and in the file names, descriptions that are links. `describe` keeps the words about the
drawing: a title when it names this drawing, else the file name without its author and
numbers; the keywords and the folder names without the author and the tagging noise.

Each drawing gives a record captioned "name: keyword, keyword" and, when it has one worth
keeping, a second captioned with its description. Splits hold whole (folder, name) groups,
so a series of near-identical drawings stays in one; the subject folders of `HELD_OUT` are
held out whole, the same concepts the emoji corpus holds out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from weft.data.corpus import (
    Manifest,
    check_percents,
    on_white,
    require,
    sample,
    split_of,
    trusted_pixels,
    write_shards,
)
from weft.specs import StorageSpec

ROOT = Path("/usr/share/openclipart")
PNG, SVG = ROOT / "png", ROOT / "svg"
PACKAGES = {PNG: "openclipart-png", SVG: "openclipart-svg"}
# The largest drawing of openclipart-png 0.18 is 623 megapixels; these are trusted files.
TRUSTED_PIXELS = 800_000_000
# Subject folders held out whole: birds, cats, fruit, sweets, flowers, weather, music,
# sports, office things and tools, as the emoji corpus holds out their subgroups.
HELD_OUT = (
    "animals/birds", "animals/mammals/housecats", "food/fruit", "food/desserts",
    "plants/flowers", "signs_and_symbols/weather", "recreation/music", "recreation/sports",
    "office", "tools",
)  # fmt: skip
COLLECTION = 8  # a title shared by this many drawings names a collection, not a drawing
BOILERPLATE = re.compile(
    r"clip ?art by|part of the|collection|\btheme\b|^untitled|^(image|drawing|layer)\s*\d*$"
    r"|HASH\(0x",
    re.IGNORECASE,
)
NOISE = {
    "clip art", "clipart", "clip", "art", "hash", "icon", "icons", "image", "images", "png",
    "svg", "media", "openclipart", "unsorted", "special", "misc", "miscellany", "externalsource",
    "public domain", "publicdomain", "remix", "inkscape", "drawing", "picture",
}  # fmt: skip
NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "cc": "http://web.resource.org/cc/",
}
NOT_A_WORD = re.compile(r"^[\d\W]+$|0x[0-9a-f]+|theme")  # numbers, Perl's hashes, icon themes
MAX_KEYWORDS = 10
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class Drawing:
    """One drawing's metadata as its SVG states it; `path` is relative, without extension
    (`animals/mammals/bears/orso_architetto_francesc_01`)."""

    path: str
    title: str
    description: str
    subjects: tuple[str, ...]
    creator: str
    license: str

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def held_out(self) -> bool:
        return any(self.folder == h or self.folder.startswith(h + "/") for h in HELD_OUT)


@dataclass(frozen=True)
class Description:
    """The words kept about a drawing: its name, keywords and description."""

    name: str
    keywords: tuple[str, ...]
    description: str

    @property
    def caption(self) -> str:
        extra = [k for k in self.keywords if k != self.name.lower()]
        return self.name + (f": {', '.join(extra)}" if extra else "")


def read_svg(svg: Path, path: str) -> Drawing:
    """A drawing's metadata from its SVG (ET.ParseError if the file is not XML)."""
    tree = ET.parse(svg)
    work = tree.find(".//cc:Work", NS)
    scope = work if work is not None else tree.getroot()

    def text(tag: str) -> str:
        return (scope.findtext(tag, default="", namespaces=NS) or "").strip()

    license_ = scope.find("cc:license", NS)
    return Drawing(
        path=path,
        title=text("dc:title"),
        description=text("dc:description"),
        subjects=tuple(
            li.text.strip()
            for li in scope.findall("dc:subject//rdf:li", NS)
            if li.text and li.text.strip()
        ),
        creator=text("dc:creator//dc:title"),
        license=(license_.get(f"{{{NS['rdf']}}}resource", "") if license_ is not None else ""),
    )


def words(text: str) -> str:
    """Underscores and runs of space as single spaces, trimmed."""
    return " ".join(text.replace("_", " ").split())


def _author_tokens(creator: str) -> set[str]:
    return {t for t in re.split(r"[^\w]+", creator.lower()) if len(t) >= 3}


def _by_author(token: str, author: set[str]) -> bool:
    """A token of the author's name, or the start of one (file names are cut at 24 chars)."""
    return len(token) >= 3 and any(a.startswith(token) for a in author)


def _file_name(drawing: Drawing, author: set[str]) -> str:
    """The file name's words without the author's name and without tokens holding digits."""
    stem = drawing.path.rpartition("/")[2]
    kept = [
        t
        for t in re.split(r"[_\-\s.]+", stem)
        if t and not re.search(r"\d", t) and not _by_author(t.lower(), author)
    ]
    return " ".join(kept)


def describe(drawing: Drawing, titles: Counter[str]) -> Description:
    """The name, keywords and description worth training on; `titles` counts each
    lower-cased title over the whole collection (shared titles name collections)."""
    author = _author_tokens(drawing.creator)
    title = words(drawing.title)
    named = title and not BOILERPLATE.search(title) and titles[title.lower()] < COLLECTION
    name = title if named else _file_name(drawing, author)
    candidates = [words(s).lower() for s in drawing.subjects]
    candidates += [words(part).lower() for part in reversed(drawing.folder.split("/"))]
    keywords: list[str] = []
    for word in candidates:
        if (
            word
            and word not in NOISE
            and not NOT_A_WORD.search(word)
            and not all(_by_author(t, author) for t in word.split())
            and word not in keywords
            and word != name.lower()
        ):
            keywords.append(word)
    if len(name) < 2:  # nothing left of the title or the file name
        name, keywords = (keywords[0], keywords[1:]) if keywords else ("drawing", keywords)
    description = words(drawing.description)
    if (
        "http" in description
        or "converted from" in description.lower()
        or BOILERPLATE.search(description)
        or description.lower() in {name.lower(), title.lower()}
        or len(description) < 8
    ):
        description = ""
    elif len(description) > MAX_DESCRIPTION:
        description = description[:MAX_DESCRIPTION].rsplit(" ", 1)[0]
    return Description(name, tuple(keywords[:MAX_KEYWORDS]), description)


def catalogue(manifest: Manifest) -> list[Drawing]:
    """Every drawing with both a PNG and a readable SVG, in path order; the others are
    counted in the manifest's `skipped` (as are, later, drawings whose PNG is blank)."""
    require(PACKAGES, PNG, SVG)
    found = []
    for png in sorted(PNG.rglob("*.png")):
        path = png.relative_to(PNG).with_suffix("").as_posix()
        svg = SVG / f"{path}.svg"
        if not svg.exists():
            manifest.skip("no_svg")
            continue
        try:
            found.append(read_svg(svg, path))
        except ET.ParseError:
            manifest.skip("bad_svg")
    return found


def split_for(drawing: Drawing, text: Description, val_percent: int, test_percent: int) -> str:
    """The drawing's split: `heldout` in a held-out folder, else by a hash of its folder and
    name, so a series of one name in one folder shares a split."""
    group = f"{drawing.folder}/{text.name.lower()}"
    return split_of(group, drawing.held_out, val_percent, test_percent)


def key(path: str, kind: str) -> str:
    """A record's key: the drawing's path with its dots as dashes, and the caption's kind
    (`name` or `description`): `openclipart/animals/bat_orlando_karam_/name`."""
    return f"openclipart/{path.replace('.', '-')}/{kind}"


def records(
    size: int, val_percent: int, test_percent: int, manifest: Manifest
) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """(split, key, {png, json}) for each drawing: a `name` record and, where worth keeping,
    a `description` record, each sidecar holding every kept word and where the drawing
    came from."""
    drawings = catalogue(manifest)
    titles = Counter(words(d.title).lower() for d in drawings)
    for drawing in drawings:
        text = describe(drawing, titles)
        png_path = PNG / f"{drawing.path}.png"
        with trusted_pixels(TRUSTED_PIXELS), Image.open(png_path) as image:
            png = on_white(image, size)
        if png is None:  # a few PNGs are wholly transparent
            manifest.skip("blank")
            continue
        split = split_for(drawing, text, val_percent, test_percent)
        manifest.items[split] += 1
        meta = {
            "source": "openclipart",
            "item": drawing.path,
            "split": split,
            "category": drawing.folder,
            "name": text.name,
            "keywords": list(text.keywords),
            "description": text.description,
            "title": drawing.title,
            "creator": drawing.creator,
            "license": drawing.license,
            "uri": png_path.as_uri(),
            "svg_uri": (SVG / f"{drawing.path}.svg").as_uri(),
        }
        captions = {"name": text.caption, "description": text.description}
        for kind, caption in captions.items():
            if caption:
                body = meta | {"caption": caption, "kind": kind}
                yield split, key(drawing.path, kind), sample(png, body)


def write_corpus(
    out: str,
    size: int = 64,
    val_percent: int = 10,
    test_percent: int = 10,
    shard_records: int = 2000,
    storage_spec: StorageSpec | None = None,
) -> Manifest:
    """Write the corpus under `out` (`weft.data.corpus`); the manifest, which names the
    held-out folders."""
    check_percents(val_percent, test_percent)
    manifest = Manifest("openclipart", about={"held_out": list(HELD_OUT)})
    chosen = records(size, val_percent, test_percent, manifest)
    return write_shards(out, chosen, manifest, shard_records, storage_spec)
