"""Small PNG thumbnails of encoded images: what the search index keeps of each item and the
curation output of each removed row, for people to look at."""

from __future__ import annotations

import io

from PIL import Image

from weft.specs import MAX_IMAGE_PIXELS


def thumbnail(data: bytes, side: int) -> bytes | None:
    """`data` scaled to fit `side` pixels, as PNG; None for bytes that are no image (or one
    over MAX_IMAGE_PIXELS)."""
    try:
        opened = Image.open(io.BytesIO(data))
        if opened.width * opened.height > MAX_IMAGE_PIXELS:
            return None
        image = opened.convert("RGB")
        image.thumbnail((side, side))
    except Exception:  # Pillow raises many types for corrupt data
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
