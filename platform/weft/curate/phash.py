"""Near-duplicate images: a 64-bit perceptual hash for LSH candidates and a 32 x 32 thumbnail
to verify them, both from one canonical form of the image.

The canonical form: the image composited onto white (transparent pixels often hold black RGB;
a copy flattened onto white then looks like its original), a uniform border colour turned to
white (a copy flattened onto another colour), cropped to the drawing's extent (the 1-99 %
quantiles of its mass, so JPEG ringing barely moves it) and centred in a white square, reduced
to 32 x 32 RGB. A photo (no uniform border) is only padded to a square.

The hash's bits are the signs of 64 fixed random projections (SimHash) of the 63 lowest DCT
coefficients of the canonical grey levels, weighted by the root of their frequency. Not the
classic pHash's comparison with the median: a left-right symmetric drawing has half its
coefficients at zero, and their bits flip on any re-encoding. Hashes of copies are a few bits
apart; distinct flat drawings may be too (same outline, other details or colours), which the
thumbnails tell apart.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

SIDE = 32  # the thumbnail is SIDE x SIDE RGB
THUMB_BYTES = SIDE * SIDE * 3
_WORK = 128  # the canonical form is found at most this many pixels wide
_NEAR, _FAR = 8.0, 24.0  # border-colour distance: background below _NEAR, drawing above _FAR
_MASS_NEAR, _MASS_FAR = 24.0, 64.0  # ... and for the drawing's extent, less sensitive to noise
_QUANTILE = 0.01  # the extent leaves out this share of the drawing's mass on each side
_BLOCK = 4  # thumbnails are compared over BLOCK x BLOCK pixel blocks
_GREY = np.array([0.299, 0.587, 0.114], np.float64)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(SIDE)
_U, _V = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
_WEIGHTS = np.sqrt(_U + _V).ravel()[1:]  # DC (brightness) left out
_PROJECTIONS = np.random.default_rng(20261127).standard_normal((64, 63))


class ImageKey(NamedTuple):
    """What near-dedup keeps of an image: its hash (signed, for Arrow's int64) and thumbnail."""

    phash: int
    thumb: bytes


def image_key(img: Image.Image) -> ImageKey:
    """The perceptual hash and thumbnail of an image."""
    thumb = canonical(img)
    return ImageKey(thumb_phash(thumb), thumb.tobytes())


def canonical(img: Image.Image) -> np.ndarray:
    """The canonical form, (SIDE, SIDE, 3) uint8: on white, cropped to the drawing, square."""
    alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    img = img.convert("RGBA" if alpha else "RGB")  # palette, grey, 16-bit, CMYK alike
    if max(img.size) > _WORK:  # Pillow resamples RGBA with premultiplied alpha
        scale = _WORK / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    pixels = np.asarray(img, dtype=np.float32)
    opacity = pixels[..., 3:] / 255 if alpha else np.ones(1, np.float32)
    return _square(*_drawing(pixels[..., :3] * opacity + 255 * (1 - opacity)))


def _drawing(rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The image with a uniform border colour faded to white, and the drawing's extent
    (x0, y0, x1, y1); the whole image where the border is not uniform."""
    h, w = rgb.shape[:2]
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = np.median(ring, axis=0)
    whole = (0.0, 0.0, float(w), float(h))
    if (_channel_max(np.abs(ring - colour)) < _NEAR).mean() < 0.5:
        return rgb, whole
    distance = _channel_max(np.abs(rgb - colour))
    keep = np.clip((distance - _NEAR) / (_FAR - _NEAR), 0, 1)[..., None]
    rgb = keep * rgb + (1 - keep) * 255
    mass = np.clip((distance - _MASS_NEAR) / (_MASS_FAR - _MASS_NEAR), 0, 1)
    if mass.sum() == 0:
        return rgb, whole
    x0, x1 = _extent(mass.sum(axis=0))
    y0, y1 = _extent(mass.sum(axis=1))
    return rgb, (x0, y0, x1, y1)


def _channel_max(x: np.ndarray) -> np.ndarray:
    """The largest of the last axis's three channels (faster than max(axis=-1))."""
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _extent(mass: np.ndarray) -> tuple[float, float]:
    """Where the cumulative mass along one axis passes _QUANTILE and 1 - _QUANTILE, to a
    fraction of a pixel."""
    edges = np.arange(len(mass) + 1, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(mass) / mass.sum()])
    lo, hi = np.interp([_QUANTILE, 1 - _QUANTILE], cumulative, edges)
    return float(lo), float(hi)


def _square(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The square around `box` (white outside the image), reduced to SIDE x SIDE."""
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0, 1.0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = rgb.shape[:2]
    pad = int(np.ceil(max(0.0, half - cx, half - cy, cx + half - w, cy + half - h))) + 1
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    img = Image.fromarray(np.clip(padded + 0.5, 0, 255).astype(np.uint8))
    square = (cx - half + pad, cy - half + pad, cx + half + pad, cy + half + pad)
    return np.asarray(img.resize((SIDE, SIDE), Image.Resampling.BOX, box=square))


def thumb_phash(thumb: np.ndarray) -> int:
    """The hash of a canonical thumbnail, as a signed int64."""
    low = (_DCT @ (thumb.astype(np.float64) @ _GREY) @ _DCT.T)[:8, :8].ravel()[1:]
    bits = _PROJECTIONS @ (low * _WEIGHTS) > 0
    return int(np.packbits(bits).view(">i8")[0])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between int64 hashes, elementwise."""
    x = np.bitwise_xor(a.astype(np.int64), b.astype(np.int64)).view(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).astype(np.int64)


# Thumbnail pairs compared at a time (each pair's arrays take ~100 KB while compared).
_PAIRS_AT_ONCE = 2048


def thumb_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Similarity in [0, 1] of thumbnails, pairwise: (m, THUMB_BYTES) uint8 each → (m,).

    1 minus the largest mean difference over a 4 x 4 block, where a pixel's difference is how
    far it lies outside the range of the other thumbnail's 3 x 3 neighbourhood (the larger of
    the two ways, over the channels, over 255). A shift of a pixel (3 % of the drawing) costs
    nothing; a detail that moved or changed colour costs its block.
    """
    out = np.ones(len(a))
    for start in range(0, len(a), _PAIRS_AT_ONCE):
        x, y = (t[start : start + _PAIRS_AT_ONCE] for t in (a, b))
        x = x.reshape(-1, SIDE, SIDE, 3).astype(np.float32)
        y = y.reshape(-1, SIDE, SIDE, 3).astype(np.float32)
        diff = _channel_max(np.maximum(_outside(x, y), _outside(y, x))) / 255
        n, k = len(diff), SIDE // _BLOCK
        blocks = diff.reshape(n, k, _BLOCK, k, _BLOCK).mean(axis=(2, 4))
        out[start : start + n] = 1 - blocks.max(axis=(1, 2))
    return out


def _outside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How far each pixel of x lies outside [min, max] of y's 3 x 3 neighbourhood."""
    padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    views = [padded[:, i : i + SIDE, j : j + SIDE] for i in range(3) for j in range(3)]
    lo, hi = np.minimum.reduce(views), np.maximum.reduce(views)
    return np.maximum(0, np.maximum(x - hi, lo - x))
