"""The inspection sets: openclipart's drawings of objects and products, some with a printed
label, with defects made on purpose (`weft.data.defects`) and recorded exactly.

Every drawing's split is fixed by a hash of its path before anything is trained, and a
drawing is used in one split only:
- `<out>/rows/{train,val}/`: training pairs for `weft curate pipelines/inspection.yaml`, as
  shards like every corpus: views of the train (val) drawings, normal and with defects of
  the *seen* kinds only, each captioned `<prompt> <answer>`. A view is the whole image
  shrunk to the model's input, or a zoomed tile (`weft.models.inspector.tiles`).
- `<out>/gold/val/`: the calibration set (abstention thresholds): val drawings, seen kinds.
- `<out>/gold/test/`: the evaluation set: test drawings with every kind, the held-out
  kinds too, and as many normal images.
A gold set is `images/*.png` and `inspection_labels.json` (`weft.inspection.GoldSet`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from weft.data import defects
from weft.data.corpus import (
    Manifest,
    on_white,
    require,
    sample,
    split_of,
    trusted_pixels,
    write_shards,
)
from weft.data.openclipart import PACKAGES, PNG, TRUSTED_PIXELS
from weft.inspection import (
    HELD_OUT,
    KINDS,
    LABEL_KINDS,
    LABELS_FILE,
    PROMPTS,
    SEEN,
    SIZE,
    GoldItem,
    GoldSet,
)
from weft.models.images import png_bytes
from weft.models.inspector import NO_DEFECT, Box, answer_text, place, tiles, view

# Objects and products first: openclipart's folders of things people make and use.
FOLDERS = (
    "food", "tools", "office", "transportation", "electronics", "containers", "education",
    "science", "recreation", "decorations", "buildings", "computer",
)  # fmt: skip
INPUT = 64  # the side of the model's input: the whole image is shrunk to it
GRID, ZOOM = 3, 2.0  # the tiles of crop inspection (the inspector config's defaults)


ABOUT = (
    "Defects made on purpose by weft.data.defects on openclipart drawings: drawn strokes, "
    "blots, bites and recolourings, not photographed wear. Each box is the bounding box of "
    "the pixels the defect changed."
)


def write_sets(
    out: str | Path, seed: int = 0, per_kind: int = 10, val_per_kind: int = 8
) -> dict[str, int]:
    """Write the training rows and the two gold sets under `out`; how many images or rows
    each part holds."""
    require(PACKAGES, PNG)
    out = Path(out)
    drawings = _drawings()
    rng = np.random.default_rng(seed)
    by_split: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for png in drawings:
        by_split[split_of(_group(png), False, 15, 15)].append(png)
    for paths in by_split.values():
        rng.shuffle(paths)
    counts = {
        "gold/test": _gold(out / "gold" / "test", "test", by_split["test"], KINDS, per_kind, rng),
        "gold/val": _gold(out / "gold" / "val", "val", by_split["val"], SEEN, val_per_kind, rng),
    }
    calibration = {item.source for item in GoldSet.read(out / "gold" / "val").items}
    manifest = Manifest("inspection", about={"seen": list(SEEN), "held_out": list(HELD_OUT)})
    rest = [p for p in by_split["val"] if p.as_uri() not in calibration]
    write_shards(
        str(out / "rows"), _rows({"train": by_split["train"], "val": rest}, rng, manifest), manifest
    )
    return counts | {f"rows/{s}": manifest.records[s] for s in ("train", "val")}


def _drawings() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (PNG / folder).rglob("*.png"))


def _group(png: Path) -> str:
    """A drawing's split group: its folder and its name without trailing numbers, so a
    series of one drawing stays in one split."""
    rel = png.relative_to(PNG).with_suffix("").as_posix()
    return rel.rstrip("0123456789_-")


def _rendered(png: Path) -> np.ndarray | None:
    """The drawing flattened on white, SIZE pixels square; None if blank."""
    with trusted_pixels(TRUSTED_PIXELS), Image.open(png) as image:
        data = on_white(image, SIZE)
    if data is None:
        return None
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _products(
    paths: list[Path], rng: np.random.Generator
) -> Iterator[tuple[Path, defects.Product]]:
    """Each drawing that renders, half of them labelled."""
    for png in paths:
        pixels = _rendered(png)
        if pixels is None:
            continue
        yield png, defects.labelled(pixels, rng) if rng.random() < 0.5 else defects.Product(pixels)


def _gold(
    folder: Path,
    split: Literal["val", "test"],
    paths: list[Path],
    kinds: tuple[str, ...],
    per_kind: int,
    rng: np.random.Generator,
) -> int:
    """Write a gold set of `per_kind` images of each kind and as many normal ones, each from
    its own drawing; how many images it holds."""
    wanted = [k for k in kinds for _ in range(per_kind)] + [None] * (per_kind * len(kinds))
    items: list[GoldItem] = []
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for png, product in _products(paths, rng):
        # a labelled product serves a label kind first; one without a label cannot
        fits = [k for k in wanted if (k in LABEL_KINDS) == (product.label is not None)]
        fits += [k for k in wanted if k is None or k not in LABEL_KINDS]
        if not fits:
            continue
        kind = fits[0]
        wanted.remove(kind)
        pixels, defect = (
            (product.pixels, None) if kind is None else defects.make(product, kind, rng)
        )
        name = f"images/{split}-{len(items):04d}.png"
        (folder / name).write_bytes(png_bytes(Image.fromarray(pixels)))
        where = defect.where((SIZE, SIZE)) if defect else None
        items.append(
            GoldItem(
                image=name,
                source=png.as_uri(),
                labelled=product.label is not None,
                kind=kind,
                box=defect.box if defect else None,
                where=where,
                problem=f"a {kind} at the {where}" if kind else NO_DEFECT,
                held_out=kind in HELD_OUT,
            )
        )
        if not wanted:
            break
    if wanted:
        raise ValueError(f"{split}: too few drawings for the gold set ({len(wanted)} short)")
    gold = GoldSet(about=ABOUT, split=split, items=items)
    (folder / LABELS_FILE).write_text(gold.model_dump_json(indent=1))
    return len(items)


def _rows(
    splits: dict[str, list[Path]], rng: np.random.Generator, manifest: Manifest
) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """(split, key, {png, json}) training pairs: for each drawing its normal image and two
    with a defect of a seen kind; of each image the whole view and two tiles (one holding
    the defect), each with a prompt drawn from both styles."""
    boxes = tiles((SIZE, SIZE), GRID, ZOOM)
    for split, paths in splits.items():
        for d, (png, product) in enumerate(_products(paths, rng)):
            manifest.items[split] += 1
            kinds = [k for k in SEEN if product.label or k not in LABEL_KINDS]
            made = [(product.pixels, None)] + [
                defects.make(product, str(k), rng) for k in rng.choice(kinds, 2, replace=False)
            ]
            for i, (pixels, defect) in enumerate(made):
                image = Image.fromarray(pixels)
                for v, (box, answer) in enumerate(_views(defect, boxes, rng)):
                    style = "neutral" if rng.random() < 0.5 else "leading"
                    prompt = str(rng.choice(PROMPTS[style]))
                    meta = {
                        "source": png.as_uri(),
                        "kind": defect.kind if defect else None,
                        "box": defect.box if defect else None,
                        "view": box,
                        "caption": f"{prompt} {answer}",
                    }
                    data = png_bytes(view(image, box, INPUT))
                    yield split, f"inspection/{split}-{d:05d}-{i}-{v}", sample(data, meta)


def _views(
    defect: defects.Defect | None, boxes: list[Box], rng: np.random.Generator
) -> list[tuple[Box, str]]:
    """The whole image and two tiles, each with its answer. A tile holds a defect if it
    holds most of its box (the answer places the part inside); tiles that cut a defect
    nearly in half are not used, since neither answer would be right."""
    whole: Box = (0, 0, SIZE, SIZE)
    if defect is None:
        return [(whole, NO_DEFECT)] + [(boxes[i], NO_DEFECT) for i in rng.choice(9, 2, False)]
    out = [(whole, answer_text(defect.kind, defect.where((SIZE, SIZE))))]
    holding, clear = [], []
    for box in boxes:
        inside = _overlap(defect.box, box)
        if inside >= 0.6:
            holding.append(box)
        elif inside == 0:
            clear.append(box)
    for box in [holding[rng.integers(len(holding))]] if holding else []:
        part = _clipped(defect.box, box)
        where = place(part, (box[2] - box[0], box[3] - box[1]))
        out.append((box, answer_text(defect.kind, where)))
    if clear:
        out.append((clear[rng.integers(len(clear))], NO_DEFECT))
    return out


def _overlap(a: Box, b: Box) -> float:
    """The share of `a`'s area inside `b`."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / max(1, (a[2] - a[0]) * (a[3] - a[1]))


def _clipped(a: Box, b: Box) -> Box:
    """The part of `a` inside `b`, in `b`'s own coordinates."""
    return (
        max(a[0], b[0]) - b[0],
        max(a[1], b[1]) - b[1],
        min(a[2], b[2]) - b[0],
        min(a[3], b[3]) - b[1],
    )
