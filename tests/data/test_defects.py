"""The defect maker: every recorded box is exactly where the pixels changed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from weft.data.defects import Product, changed_box, labelled, make, object_mask
from weft.inspection import KINDS, LABEL_KINDS


def drawing(seed: int, size: int = 128) -> np.ndarray:
    """A product-like drawing on white: a coloured, outlined body and a darker part."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(40, 200, 3))
    draw.rounded_rectangle((16, 24, 112, 108), radius=12, fill=colour, outline=(20, 20, 20))
    draw.ellipse((40, 8, 88, 40), fill=(90, 90, 90))
    return np.asarray(image)


@pytest.mark.parametrize("kind", KINDS)
def test_the_recorded_box_is_where_the_pixels_changed(kind: str) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        product = labelled(drawing(seed), rng)
        after, defect = make(product, kind, rng)
        assert defect.kind == kind
        x0, y0, x1, y1 = defect.box
        differs = (after != product.pixels).any(axis=-1)
        assert differs[y0:y1, x0:x1].any()
        outside = differs.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any(), "a pixel changed outside the recorded box"
        # the box is tight: its first and last rows and columns each hold a changed pixel
        assert differs[y0, x0:x1].any() and differs[y1 - 1, x0:x1].any()
        assert differs[y0:y1, x0].any() and differs[y0:y1, x1 - 1].any()
        assert after.dtype == np.uint8 and after.shape == product.pixels.shape


def test_a_defect_lands_on_the_object_and_a_label_kind_on_the_label() -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        product = labelled(drawing(seed), rng)
        assert product.label is not None
        on = object_mask(product.pixels)
        for kind in ("scratch", "stain", "missing part", "wrong colour", "speck"):
            _, defect = make(product, kind, rng)
            x0, y0, x1, y1 = defect.box
            assert on[y0:y1, x0:x1].any(), kind
        for kind in LABEL_KINDS:
            _, defect = make(product, kind, rng)
            lx0, ly0, lx1, ly1 = product.label
            assert defect.box[0] < lx1 and lx0 < defect.box[2]
            assert defect.box[1] < ly1 and ly0 < defect.box[3]


def test_a_speck_is_a_few_pixels_and_a_stain_is_not() -> None:
    rng = np.random.default_rng(3)
    product = Product(drawing(3))
    speck, _ = make(product, "speck", rng)
    stain, _ = make(product, "stain", rng)
    assert 4 <= (speck != product.pixels).any(axis=-1).sum() <= 9
    assert (stain != product.pixels).any(axis=-1).sum() > 100


def test_a_torn_label_shows_what_was_beneath_it() -> None:
    rng = np.random.default_rng(1)
    product = labelled(drawing(1), rng)
    assert product.under is not None
    after, defect = make(product, "torn label", rng)
    x0, y0, x1, y1 = defect.box
    restored = (after == product.under).all(axis=-1) & (product.pixels != product.under).any(-1)
    assert restored[y0:y1, x0:x1].sum() > 10


def test_label_kinds_need_a_label_and_unknown_kinds_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="a torn label needs a labelled product"):
        make(Product(drawing(0)), "torn label", rng)
    with pytest.raises(ValueError, match="unknown defect kind 'dent'"):
        make(Product(drawing(0)), "dent", rng)


def test_changed_box_is_none_for_identical_images() -> None:
    pixels = drawing(0)
    assert changed_box(pixels, pixels.copy()) is None
