"""Real drawings with planted near-duplicate copies, to measure image near-dedup.

The drawings are the emoji of Noto Color Emoji (Debian's fonts-noto-color-emoji), rendered as
transparent PNGs, captioned with their CLDR names (unicode-cldr-core). A copy is made the ways
clip-art gets copied: resized, flattened onto white and re-encoded as JPEG, flattened onto
another colour, cropped by 1-3 %, or all of these; its caption is lightly edited.
`write_corpus` writes a WebDataset input for `weft curate`, the ground truth, and labelled
image pairs for `weft calibrate --images`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from weft.curate.phash import hamming, image_key
from weft.curate.shards import tar_shard
from weft.data.emoji import FONT, render
from weft.models.images import png_bytes

NAMES = Path("/usr/share/unicode/cldr/common/annotations/en.xml")


class Emoji(NamedTuple):
    char: str
    name: str


@cache
def emoji() -> tuple[Emoji, ...]:
    """Every single-code-point emoji that CLDR names and the font draws, in CLDR's order."""
    for path, package in ((FONT, "fonts-noto-color-emoji"), (NAMES, "unicode-cldr-core")):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: apt-get install {package}")
    annotations = NAMES.read_text(encoding="utf-8")
    names = re.findall(r'<annotation cp="([^"]+)" type="tts">([^<]+)</annotation>', annotations)
    found = (Emoji(c, n) for c, n in names if len(c) == 1 and ord(c) >= 0x2000)
    return tuple(e for e in found if render(e.char).getbbox())


def _png(img: Image.Image) -> tuple[str, bytes]:
    return "png", png_bytes(img)


def _jpeg(img: Image.Image, quality: int) -> tuple[str, bytes]:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "jpg", buf.getvalue()


def flatten(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """The drawing composited onto an opaque colour."""
    return Image.alpha_composite(Image.new("RGBA", img.size, (*colour, 255)), img).convert("RGB")


def resize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = float(rng.choice([0.5, 0.7, 0.85, 1.5]))
    size = (round(img.width * scale), round(img.height * scale))
    return img.resize(size, Image.Resampling.LANCZOS)


def crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """1-3 % cut off one to four sides."""
    sides = rng.random(4) < 0.5
    sides[rng.integers(4)] = True
    w, h = img.size
    left, top, right, bottom = (
        round(length * float(rng.uniform(0.01, 0.03))) if on else 0
        for length, on in zip((w, h, w, h), sides.tolist(), strict=True)
    )
    return img.crop((left, top, w - right, h - bottom))


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = rng.integers(0, 256, 3).tolist()
    return r, g, b


Copier = Callable[[Image.Image, np.random.Generator], tuple[str, bytes]]
WHITE = (255, 255, 255)
COPIES: dict[str, Copier] = {
    "resized": lambda img, rng: _png(resize(img, rng)),
    "jpeg": lambda img, rng: _jpeg(flatten(img, WHITE), int(rng.choice([30, 50, 75, 90]))),
    "flattened_white": lambda img, rng: _png(flatten(img, WHITE)),
    "flattened_colour": lambda img, rng: _png(flatten(img, colour(rng))),
    "cropped": lambda img, rng: _png(crop(img, rng)),
    "combined": lambda img, rng: _jpeg(
        flatten(crop(resize(img, rng), rng), WHITE), int(rng.choice([50, 75, 90]))
    ),
}


def caption(name: str) -> str:
    return f"{name}: an emoji drawing in flat colours on a transparent background"


# Light caption edits. `recased` keeps every word, so the captions' Jaccard stays 1.0;
# `appended` adds a word at the end (Jaccard k/(k+1) for k word 5-grams: 0.8 or more from
# 8 words); `reworded` changes a word in the middle (5 of the 5-grams: under 0.8).
EDITS: dict[str, Callable[[str], str]] = {
    "recased": lambda text: text.upper()[:1] + text[1:].replace(":", " -") + ".",
    "appended": lambda text: f"{text} icon",
    "reworded": lambda text: text.replace("drawing", "picture"),
}


@dataclass(frozen=True)
class Planted:
    """A planted copy: its key, its original's key, how it was copied and captioned."""

    copy: str
    original: str
    kind: str
    edit: str


@dataclass(frozen=True)
class Corpus:
    originals: list[str]  # keys of the distinct drawings
    planted: list[Planted]


Sample = tuple[str, str, bytes, str]  # key, image extension, image bytes, caption


def make_corpus(
    distinct: int,
    copies: int,
    seed: int = 0,
    kinds: tuple[str, ...] = tuple(COPIES),
    edits: tuple[str, ...] = ("recased", "appended"),
) -> tuple[list[Sample], Corpus]:
    """`distinct` random emoji and `copies` copies of some of them, shuffled: the copy kinds
    in turn, and the caption edits in turn over each round of kinds."""
    rng = np.random.default_rng(seed)
    every = emoji()
    if distinct > len(every):
        raise ValueError(f"only {len(every)} emoji are drawn by {FONT}")
    chosen = [every[i] for i in sorted(rng.choice(len(every), distinct, replace=False))]
    samples = [(f"e{i:05d}", *_png(render(e.char)), caption(e.name)) for i, e in enumerate(chosen)]
    planted = []
    for j, i in enumerate(rng.choice(distinct, copies, replace=copies > distinct).tolist()):
        kind, edit = kinds[j % len(kinds)], edits[j // len(kinds) % len(edits)]
        ext, data = COPIES[kind](render(chosen[i].char), rng)
        planted.append(Planted(f"c{j:05d}", f"e{i:05d}", kind, edit))
        samples.append((planted[-1].copy, ext, data, EDITS[edit](caption(chosen[i].name))))
    order = rng.permutation(len(samples))
    return [samples[i] for i in order], Corpus([s[0] for s in samples[:distinct]], planted)


def write_corpus(out: Path, samples: list[Sample], corpus: Corpus, shards: int = 2) -> None:
    """`out/pairs/*.tar` (WebDataset: key.png|jpg + key.txt), `out/images/` (the same
    images as files), `out/truth.json`, and `out/image_pairs.jsonl`: each planted copy with
    its original (a duplicate) and with the drawing whose hash is nearest its original's (a
    hard non-duplicate)."""
    (out / "pairs").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    per_shard = -(-len(samples) // shards)
    for s in range(shards):
        shard = samples[s * per_shard : (s + 1) * per_shard]
        members = [(key, {ext: data, "txt": text.encode()}) for key, ext, data, text in shard]
        (out / "pairs" / f"shard-{s:05d}.tar").write_bytes(tar_shard(members))
    files = {}
    for key, ext, data, _ in samples:
        files[key] = f"images/{key}.{ext}"
        (out / files[key]).write_bytes(data)
    (out / "truth.json").write_text(
        json.dumps({"originals": corpus.originals, "planted": [asdict(p) for p in corpus.planted]})
    )
    nearest = _nearest_other(samples, corpus.originals)
    lines = [
        {"a": files[a], "b": files[p.copy], "duplicate": a == p.original}
        for p in corpus.planted
        for a in (p.original, nearest[p.original])
    ]
    (out / "image_pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def _nearest_other(samples: list[Sample], originals: list[str]) -> dict[str, str]:
    """Each original's nearest other original by perceptual-hash distance."""
    data = {key: body for key, _, body, _ in samples}
    hashes = np.array([image_key(Image.open(io.BytesIO(data[k]))).phash for k in originals])
    nearest = {}
    for i, key in enumerate(originals):
        distance = hamming(np.full(len(hashes), hashes[i]), hashes)
        distance[i] = 65
        nearest[key] = originals[int(distance.argmin())]
    return nearest


@dataclass(frozen=True)
class Score:
    """What a near-dedup run found in a corpus."""

    hits: list[tuple[Planted, bool]]  # each planted copy: in its original's cluster?
    distinct_removed: int  # distinct drawings clustered with another drawing
    distinct: int

    def recall(self, kind: str | None = None, edits: tuple[str, ...] = tuple(EDITS)) -> float:
        """The share of the copies (of one kind, with these caption edits) found."""
        found = [hit for p, hit in self.hits if kind in (None, p.kind) and p.edit in edits]
        return sum(found) / len(found)

    @property
    def false_positive_rate(self) -> float:
        return self.distinct_removed / self.distinct


def score(corpus: Corpus, duplicate_of: dict[str, str]) -> Score:
    """Score a run from its removals (key → the key it duplicates): a copy is found when it
    lands in its original's cluster; a cluster holding k distinct drawings removed k - 1."""

    def cluster(key: str) -> str:
        return duplicate_of.get(key, key)

    hits = [(p, cluster(p.copy) == cluster(p.original)) for p in corpus.planted]
    clusters = {cluster(k) for k in corpus.originals}
    return Score(hits, len(corpus.originals) - len(clusters), len(corpus.originals))
