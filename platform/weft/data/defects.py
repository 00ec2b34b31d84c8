"""Defects made on purpose and recorded exactly: the inspection sets' ground truth.

Each maker draws one kind of visible issue onto a drawing (an RGB uint8 array on white) at
a place on the drawn object, and the recorded box is computed from the change itself (the
bounding box of every pixel that differs), never from where the maker meant to draw. A
product may carry a printed label (`labelled`); the label kinds need one.

What this leaves untested: these are drawn with simple strokes and fills on flat drawings,
not photographed wear; real scratches catch light, real stains soak into texture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from weft.inspection import KINDS, LABEL_KINDS
from weft.models.inspector import Box, place

WHITE = 235  # a channel at or above this everywhere is background


@dataclass(frozen=True)
class Product:
    """An image to inspect: its pixels, and if it carries a label, the label's box and the
    pixels beneath it (what a tear shows)."""

    pixels: np.ndarray  # (H, W, 3) uint8
    label: Box | None = None
    under: np.ndarray | None = None


@dataclass(frozen=True)
class Defect:
    kind: str
    box: Box

    def where(self, size: tuple[int, int]) -> str:
        """The grid cell of the box's centre, in words (`weft.models.inspector.place`)."""
        return place(self.box, size)


def changed_box(before: np.ndarray, after: np.ndarray) -> Box | None:
    """The bounding box of the pixels that differ, None if none does."""
    ys, xs = np.nonzero((before != after).any(axis=-1))
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def object_mask(pixels: np.ndarray) -> np.ndarray:
    """(H, W) bool: the drawn object, not the white background."""
    return np.asarray((pixels < WHITE).any(axis=-1))


def labelled(pixels: np.ndarray, rng: np.random.Generator) -> Product:
    """`pixels` with a printed label stuck on the object: a white card with a dark border
    and lines of print."""
    h, w = pixels.shape[:2]
    lw, lh = int(w * rng.uniform(0.28, 0.36)), int(h * rng.uniform(0.16, 0.2))
    x, y = _on_object(pixels, rng, margin=(lw // 2, lh // 2))
    box = (x - lw // 2, y - lh // 2, x - lw // 2 + lw, y - lh // 2 + lh)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.rectangle(
        (box[0], box[1], box[2] - 1, box[3] - 1), fill=(252, 252, 248), outline=(60,) * 3
    )
    for line, (x0, y0, x1) in enumerate(_print_lines(box, rng)):
        draw.line((x0, y0, x1, y0), fill=(20, 20, 20) if line else (170, 20, 20), width=1)
    return Product(np.asarray(image), box, pixels)


def make(product: Product, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, Defect]:
    """The product's pixels with a defect of `kind`, and the defect as recorded: its kind and
    the box of the pixels it changed. A label kind needs a labelled product (ValueError)."""
    if kind not in MAKERS:
        raise ValueError(f"unknown defect kind {kind!r}; known: {', '.join(KINDS)}")
    if kind in LABEL_KINDS and product.label is None:
        raise ValueError(f"a {kind} needs a labelled product")
    for _ in range(20):  # a stroke can land on pixels of its own colour: draw again
        after = MAKERS[kind](product, rng)
        box = changed_box(product.pixels, after)
        if box is not None:
            return after, Defect(kind, box)
    raise ValueError(f"a {kind} changed no pixel of this image in 20 tries")


def _on_object(
    pixels: np.ndarray, rng: np.random.Generator, margin: tuple[int, int] = (2, 2)
) -> tuple[int, int]:
    """A random point (x, y) of the drawn object, at least `margin` from the edges (the
    image's centre if nothing is drawn there)."""
    h, w = pixels.shape[:2]
    mx, my = margin
    mask = object_mask(pixels)
    mask[:my] = mask[h - my :] = False
    mask[:, :mx] = mask[:, w - mx :] = False
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return w // 2, h // 2
    i = rng.integers(len(xs))
    return int(xs[i]), int(ys[i])


def _print_lines(box: Box, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(x0, y, x1) of a label's lines of print, within `box`."""
    x0, y0, x1, y1 = box
    rows = range(y0 + 3, y1 - 2, 3)
    return [(x0 + 3, y, x1 - 3 - int(rng.integers(0, max(1, (x1 - x0) // 3)))) for y in rows]


def _scratch(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A thin straight line, light or dark, across the object."""
    size = product.pixels.shape[0]
    x, y = _on_object(product.pixels, rng)
    length, angle = rng.uniform(0.2, 0.35) * size, rng.uniform(0, np.pi)
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    image = Image.fromarray(product.pixels)
    shade = (70, 70, 70) if rng.random() < 0.5 else (200, 200, 215)
    ImageDraw.Draw(image).line((x - dx, y - dy, x + dx, y + dy), fill=shade, width=1)
    return np.asarray(image)


def _crack(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A dark jagged line with a branch, as a crack runs."""
    size = product.pixels.shape[0]
    x, y = _on_object(product.pixels, rng)
    angle = rng.uniform(0, 2 * np.pi)
    step = size * 0.05
    points = [(float(x), float(y))]
    for _ in range(6):
        angle += rng.uniform(-0.9, 0.9)
        points.append((points[-1][0] + step * np.cos(angle), points[-1][1] + step * np.sin(angle)))
    image = Image.fromarray(product.pixels)
    draw = ImageDraw.Draw(image)
    draw.line(points, fill=(25, 20, 20), width=2)
    bx, by = points[3]
    turn = angle + rng.choice([-1.2, 1.2])
    draw.line(
        (bx, by, bx + 2 * step * np.cos(turn), by + 2 * step * np.sin(turn)), fill=(25, 20, 20)
    )
    return np.asarray(image)


def _stain(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A brown blotch of a few overlapping blobs, blended half into what is under it."""
    size = product.pixels.shape[0]
    x, y = _on_object(product.pixels, rng)
    mask = Image.new("L", product.pixels.shape[1::-1], 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(4):
        cx, cy = x + rng.normal(0, size * 0.03), y + rng.normal(0, size * 0.03)
        rx, ry = rng.uniform(0.03, 0.07, size=2) * size
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    alpha = np.asarray(mask, np.float32)[..., None] / 255 * 0.55
    brown = np.array([125, 85, 35], np.float32)
    return np.asarray(product.pixels * (1 - alpha) + brown * alpha).round().astype(np.uint8)


def _missing_part(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A piece of the object gone: a bite of it shows the white background."""
    size = product.pixels.shape[0]
    x, y = _on_object(product.pixels, rng)
    r = rng.uniform(0.08, 0.13) * size
    mask = Image.new("L", product.pixels.shape[1::-1], 0)
    points = [
        (x + r * rng.uniform(0.6, 1.2) * np.cos(a), y + r * rng.uniform(0.6, 1.2) * np.sin(a))
        for a in np.linspace(0, 2 * np.pi, 9)[:-1]
    ]
    ImageDraw.Draw(mask).polygon(points, fill=255)
    out = product.pixels.copy()
    out[np.asarray(mask) > 0] = 255
    return out


def _wrong_colour(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A region of the object printed in a wrong, saturated colour (its shading kept)."""
    size = product.pixels.shape[0]
    x, y = _on_object(product.pixels, rng)
    r = rng.uniform(0.1, 0.15) * size
    mask = Image.new("L", product.pixels.shape[1::-1], 0)
    ImageDraw.Draw(mask).ellipse((x - r, y - r, x + r, y + r), fill=255)
    region = (np.asarray(mask) > 0) & object_mask(product.pixels)
    colours = np.array([[230, 30, 200], [30, 220, 60], [250, 140, 0], [0, 170, 240]], np.float32)
    tint = colours[rng.integers(len(colours))]
    shade = product.pixels.astype(np.float32).mean(axis=-1, keepdims=True) / 255
    recoloured = (tint * (0.35 + 0.65 * shade)).round().astype(np.uint8)
    out = product.pixels.copy()
    out[region] = recoloured[region]
    return out


def _torn_label(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A corner of the label torn off along a jagged edge: what was beneath shows."""
    assert product.label is not None and product.under is not None
    x0, y0, x1, y1 = product.label
    w, h = x1 - x0, y1 - y0
    cx, sx = (x0, 1) if rng.random() < 0.5 else (x1, -1)
    cy, sy = (y0, 1) if rng.random() < 0.5 else (y1, -1)
    along, down = rng.uniform(0.45, 0.8) * w, rng.uniform(0.6, 1.0) * h
    edge = [(cx + sx * along * t, cy + sy * down * (1 - t)) for t in np.linspace(0, 1, 7)]
    edge = [(px + rng.normal(0, 1.2), py + rng.normal(0, 1.2)) for px, py in edge]
    mask = Image.new("L", product.pixels.shape[1::-1], 0)
    ImageDraw.Draw(mask).polygon([(cx, cy), *edge], fill=255)
    torn = np.asarray(mask) > 0
    out = product.pixels.copy()
    out[torn] = product.under[torn]
    image = Image.fromarray(out)
    ImageDraw.Draw(image).line(edge, fill=(150, 150, 140), width=1)  # the paper's torn edge
    return np.asarray(image)


def _misprinted_label(product: Product, rng: np.random.Generator) -> np.ndarray:
    """The label's print doubled out of register: a second, offset pass in a wrong ink."""
    assert product.label is not None
    image = Image.fromarray(product.pixels)
    draw = ImageDraw.Draw(image)
    dx, dy = int(rng.integers(2, 4)), int(rng.choice([-1, 1]))
    ink = (0, 160, 220) if rng.random() < 0.5 else (220, 0, 160)
    right = product.label[2] - 2
    for x0, y, x1 in _print_lines(product.label, rng):
        draw.line((x0 + dx, y + dy, min(x1 + dx, right), y + dy), fill=ink, width=1)
    return np.asarray(image)


def _speck(product: Product, rng: np.random.Generator) -> np.ndarray:
    """A tiny defect: a dot of two or three pixels a side, dark or bright red."""
    x, y = _on_object(product.pixels, rng)
    side = int(rng.integers(2, 4))
    out = product.pixels.copy()
    out[y : y + side, x : x + side] = (10, 10, 10) if rng.random() < 0.5 else (235, 0, 0)
    return out


MAKERS: dict[str, Callable[[Product, np.random.Generator], np.ndarray]] = {
    "scratch": _scratch,
    "crack": _crack,
    "stain": _stain,
    "missing part": _missing_part,
    "wrong colour": _wrong_colour,
    "torn label": _torn_label,
    "misprinted label": _misprinted_label,
    "speck": _speck,
}
