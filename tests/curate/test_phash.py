"""Near-duplicate images on real drawings: the canonical form, the hash and the thumbnails.

The drawings are Noto Color Emoji (Debian's fonts-noto-color-emoji and unicode-cldr-core);
a missing font fails these tests with the apt-get line that installs it.
"""

from __future__ import annotations

import io
import string
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from weft.curate.minhash import Scores, image_matches
from weft.curate.phash import SIDE, ImageKey, hamming, image_key, thumb_similarity
from weft.curate.spec import NearDedupSpec
from weft.data.imagepairs import COPIES, WHITE, emoji, flatten, render

SPEC = NearDedupSpec()
PHOTOS = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"


def matches(a: list[ImageKey], b: list[ImageKey]) -> np.ndarray:
    """Whether near-dedup's image test (hash distance, then thumbnails) matches a[i], b[i]."""
    distance = hamming(np.array([k.phash for k in a]), np.array([k.phash for k in b]))
    thumbs = (
        np.frombuffer(b"".join(k.thumb for k in x), np.uint8).reshape(len(x), -1) for x in (a, b)
    )
    return image_matches(Scores(np.full(len(a), np.nan), distance, thumb_similarity(*thumbs)), SPEC)


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_drawing_flattened_onto_white_is_its_transparent_original() -> None:
    """The hash was taken with the alpha channel dropped: transparent pixels (black in a
    font's drawing) made every drawing a dark blob unlike its copy on white."""
    for e in emoji()[::45]:
        drawing = render(e.char)
        original, copy = image_key(drawing), image_key(flatten(drawing, WHITE))
        assert original.phash == copy.phash, e.name
        thumbs = [np.frombuffer(k.thumb, np.uint8)[None] for k in (original, copy)]
        assert thumb_similarity(*thumbs)[0] >= 0.98, e.name  # rounding apart


def test_dark_glyphs_on_transparent_black_are_not_one_blob() -> None:
    """60 black glyphs on transparent black pixels all had one hash, so near-dedup removed
    59 as duplicates of the first; on white they are 60 shapes and none matches another."""
    font = ImageFont.load_default(size=100)  # Pillow's own, needs no system font
    keys = []
    for ch in string.ascii_uppercase + string.digits + "abdefghijkmnpqrtuy&?%#@$":
        glyph = Image.new("RGBA", (120, 130), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((10, 5), ch, font=font, fill=(0, 0, 0, 255))
        keys.append(image_key(glyph))
    a, b = np.triu_indices(len(keys), k=1)
    assert len({k.phash for k in keys}) == len(keys)
    assert not matches([keys[i] for i in a], [keys[i] for i in b]).any()


# Flattened onto a random colour, a drawing loses its parts in that colour and its
# translucent parts take it on: some such copies no longer look like their original.
FLOOR = {"flattened_colour": 0.7}


@pytest.mark.parametrize("kind", list(COPIES))
def test_copies_match_their_originals(kind: str) -> None:
    rng = np.random.default_rng(0)
    sample = emoji()[5::23]  # 60 across CLDR's groups
    originals = [image_key(render(e.char)) for e in sample]
    copies = [image_key(decoded(COPIES[kind](render(e.char), rng)[1])) for e in sample]
    assert matches(originals, copies).mean() >= FLOOR.get(kind, 0.9)


def test_distinct_emoji_rarely_match() -> None:
    """Emoji of one template (faces, clocks, squares in sizes) share their outline; the
    thumbnails tell at least 99 % of them apart."""
    keys = [image_key(render(e.char)) for e in emoji()[::3]]
    hashes = np.array([k.phash for k in keys])
    a, b = np.triu_indices(len(keys), k=1)
    close = hamming(hashes[a], hashes[b]) <= SPEC.image_max_distance
    a, b = a[close], b[close]
    matched = matches([keys[i] for i in a], [keys[i] for i in b])
    assert len(set(a[matched]) | set(b[matched])) <= 0.01 * len(keys)


def test_a_photo_matches_its_copies_and_not_another_photo() -> None:
    photo = Image.open(PHOTOS / "grace_hopper.jpg")
    other = Image.open(PHOTOS / "Minduka_Present_Blue_Pack.png")
    w, h = photo.size
    small = photo.crop((w // 50, 0, w, h - h // 40)).resize((w // 2, h // 2))
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=60)
    keys = [image_key(photo), image_key(decoded(buf.getvalue())), image_key(other)]
    assert matches(keys[:2], keys[1:]).tolist() == [True, False]


def test_thumbnails_forgive_a_one_pixel_shift_but_not_a_changed_block() -> None:
    rng = np.random.default_rng(1)
    base = np.kron(rng.integers(0, 256, (SIDE // 4, SIDE // 4, 3)), np.ones((4, 4, 1)))
    shifted = np.concatenate([base[:, :1], base[:, :-1]], axis=1)  # one pixel right
    changed = base.copy()
    changed[8:12, 8:12] = 255 - changed[8:12, 8:12]
    flat = [x.astype(np.uint8).reshape(1, -1) for x in (base, shifted, changed)]
    assert thumb_similarity(flat[0], flat[1])[0] == 1.0
    assert thumb_similarity(flat[0], flat[2])[0] < SPEC.image_threshold


@pytest.mark.parametrize("mode", ["P", "PA", "LA", "L", "1", "I;16", "CMYK", "RGBA"])
def test_every_image_mode_has_a_key(mode: str) -> None:
    img = render(emoji()[0].char).convert(mode)
    key = image_key(img)
    assert len(key.thumb) == SIDE * SIDE * 3
    assert -(2**63) <= key.phash < 2**63
