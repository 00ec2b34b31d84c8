"""Images in and out of the models: encoded bytes → (3, S, S) float32 in [-1, 1], and back
to PNG. Pure PIL and numpy, shared by training's preprocessing and by inference."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from weft.specs import MAX_IMAGE_PIXELS

# The encodings a model input may be in; anything else is refused before it is parsed.
FORMATS = ("PNG", "JPEG", "WEBP")


class ImageError(ValueError):
    """An input image that cannot be decoded; the message names which one."""


def open_image(
    data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, formats: tuple[str, ...] | None = FORMATS
) -> Image.Image:
    """The image's header, parsed only as one of `formats` (None: any Pillow reads), with no
    pixel decoded yet; a size
    over `max_pixels` (a decompression bomb) or anything Pillow cannot parse is an
    ImageError. Pillow raises many types for corrupt data (SyntaxError for a broken PNG
    chunk), so every one of them is caught here."""
    try:
        img = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its warning level
        raise ImageError(f"more than {max_pixels} pixels") from None
    except Exception as err:
        raise ImageError(_why(err)) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(f"{width}x{height} pixels is more than {max_pixels}")
    return img


def decode(data: bytes, formats: tuple[str, ...] | None = FORMATS) -> Image.Image:
    """The image in RGB, fully decoded after `open_image`'s checks; any failure is an
    ImageError."""
    img = open_image(data, formats=formats)
    try:
        return img.convert("RGB")
    except Exception as err:
        raise ImageError(_why(err)) from None


def _why(err: Exception) -> str:
    if "cannot identify image file" in str(err):
        return f"not a {', '.join(FORMATS)} image"
    return f"{type(err).__name__}: {err}"


def to_array(
    data: bytes,
    size: int,
    rng: np.random.Generator | None = None,
    formats: tuple[str, ...] | None = FORMATS,
) -> np.ndarray:
    """(3, size, size) float32 in [-1, 1]: a centre (or, with `rng`, random 80-100 %) square
    crop, resized, flipped half the time with `rng`. Training reads curated images in any
    format the curation admitted (`formats=None`); model inputs only in FORMATS."""
    img = decode(data, formats)
    w, h = img.size
    side = min(w, h) * (rng.uniform(0.8, 1.0) if rng is not None else 1.0)
    left = (w - side) * (rng.uniform() if rng is not None else 0.5)
    top = (h - side) * (rng.uniform() if rng is not None else 0.5)
    img = img.resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    if rng is not None and rng.uniform() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return (np.asarray(img, np.float32).transpose(2, 0, 1) / 127.5 - 1).astype(np.float32)


def batch(images: Sequence[bytes], size: int) -> torch.Tensor:
    """(B, 3, size, size): the centre crop of each encoded image; an image that cannot be
    decoded raises ImageError naming its position."""
    arrays = []
    for i, data in enumerate(images):
        try:
            arrays.append(to_array(data, size))
        except ImageError as err:
            raise ImageError(f"image {i}: cannot be decoded ({err})") from None
    if not arrays:
        return torch.zeros(0, 3, size, size)
    return torch.from_numpy(np.stack(arrays))


def to_png(image: torch.Tensor) -> bytes:
    """A (3, H, W) image in [-1, 1] as PNG bytes."""
    pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return png_bytes(Image.fromarray(pixels))


def png_bytes(image: Image.Image) -> bytes:
    """`image` encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def captioned_grid(
    images: Sequence[bytes], captions: Sequence[str], columns: int = 4, side: int = 128
) -> Image.Image:
    """The encoded images in a grid, each scaled to `side` pixels (nearest: small samples
    stay crisp) with its caption written under it, wrapped to the cell's width."""
    font = ImageFont.load_default(size=11)
    chars = max(1, side // 6)  # what fits on a line of the cell, at this font size
    lines = [textwrap.wrap(c, chars)[:3] for c in captions]
    text_h = 14 * max((len(w) for w in lines), default=1) + 4
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * side, rows * (side + text_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (data, wrapped) in enumerate(zip(images, lines, strict=True)):
        r, c = divmod(i, columns)
        x, y = c * side, r * (side + text_h)
        tile = Image.open(io.BytesIO(data)).convert("RGB")
        canvas.paste(tile.resize((side, side), Image.Resampling.NEAREST), (x, y))
        draw.multiline_text((x + 2, y + side + 2), "\n".join(wrapped), fill="black", font=font)
    return canvas
