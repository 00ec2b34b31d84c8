"""Validate: decode every image once and normalise every text; broken records are quarantined.

Reads READ_SCHEMA, writes ROW_SCHEMA. Image bytes are kept as they came (no re-encoding);
width, height, mode and format are recorded. A decompression bomb is caught from the header,
before any pixel is decoded.
"""

from __future__ import annotations

import io
import unicodedata
from typing import ClassVar, NamedTuple

import pyarrow as pa
from PIL import Image

from weft.curate.phash import image_key
from weft.curate.schema import KEPT, QUARANTINED, ROW_SCHEMA, Decision, decide, with_columns
from weft.curate.spec import ValidateSpec

STAGE = "validate"
# Pillow has its own bomb guard; ours (`max_image_pixels`) runs first and names the limit.
Image.MAX_IMAGE_PIXELS = None


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def normalise_text(raw: bytes | None, spec: ValidateSpec) -> str:
    """Strict UTF-8 → Unicode NFC → whitespace runs collapsed to one space, trimmed."""
    if raw is None:
        raise Rejected("missing_text", "no text for this record")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Rejected("invalid_utf8", f"text is not UTF-8: {err}") from None
    text = " ".join(unicodedata.normalize("NFC", text).split())  # split(): Unicode whitespace
    if len(text) < spec.min_text_chars:
        raise Rejected("empty_text" if not text else "short_text", f"{len(text)} characters")
    if len(text) > spec.max_text_chars:
        raise Rejected(
            "long_text", f"{len(text)} characters > max_text_chars {spec.max_text_chars}"
        )
    return text


class ImageInfo(NamedTuple):
    """What the one full decode of an image records (as the `image_<field>` columns): the
    perceptual hash and thumbnail are what near-dedup compares."""

    format: str
    width: int
    height: int
    mode: str
    phash: int
    thumb: bytes


def inspect_image(data: bytes, spec: ValidateSpec) -> ImageInfo:
    """Decode the image fully, once: its format, size, mode, perceptual hash and thumbnail."""
    if not data:
        raise Rejected("empty_image", "zero-byte image")
    if len(data) > spec.max_image_bytes:
        raise Rejected(
            "image_too_large", f"{len(data)} bytes > max_image_bytes {spec.max_image_bytes}"
        )
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
        width, height = img.size
        if width * height > spec.max_image_pixels:
            raise Rejected(
                "image_too_many_pixels",
                f"{width}x{height} = {width * height} pixels > max_image_pixels "
                f"{spec.max_image_pixels} (decompression-bomb guard)",
            )
        fmt = img.format or "unknown"
        if fmt not in spec.image_formats:
            raise Rejected("image_format", f"{fmt} is not one of {', '.join(spec.image_formats)}")
        img.load()
    except Rejected:
        raise
    except Exception as err:  # Pillow raises many types for corrupt data
        raise Rejected("image_undecodable", f"{type(err).__name__}: {err}") from None
    if min(width, height) < spec.min_image_side:
        raise Rejected(
            "image_too_small", f"{width}x{height} < min_image_side {spec.min_image_side}"
        )
    return ImageInfo(fmt, width, height, img.mode, *image_key(img))


class Validate:
    """Stage: READ_SCHEMA → ROW_SCHEMA, quarantining records that cannot be used."""

    name = STAGE
    actors: ClassVar[int] = 0

    def __init__(self, spec: ValidateSpec) -> None:
        self.spec = spec

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        status = batch["status"].to_pylist()
        raw_texts = batch["text_bytes"].to_pylist()
        images = batch["image"].to_pylist()
        texts: list[str | None] = [None] * n
        meta: list[ImageInfo | None] = [None] * n
        rejected: dict[int, Decision] = {}
        for i in range(n):
            if status[i] != KEPT:
                continue
            try:
                texts[i] = normalise_text(raw_texts[i], self.spec)
                if images[i] is not None:
                    meta[i] = inspect_image(images[i], self.spec)
            except Rejected as err:
                rejected[i] = Decision(QUARANTINED, STAGE, err.reason, str(err))
        info = {
            f"image_{name}": [m and getattr(m, name) for m in meta] for name in ImageInfo._fields
        }
        # READ_SCHEMA's columns carry over; the rest are new here or filled by later stages.
        columns = {
            f.name: batch[f.name] if f.name in batch.schema.names else pa.nulls(n, f.type)
            for f in ROW_SCHEMA
        }
        out = with_columns(pa.table(columns, schema=ROW_SCHEMA), text=texts, **info)
        return decide(out, rejected)
