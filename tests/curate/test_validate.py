"""`validate`: every kind of broken record is quarantined with a reason that names it."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from PIL import Image

from weft.curate.schema import KEPT, QUARANTINED, READ_SCHEMA, row_id
from weft.curate.spec import ValidateSpec
from weft.curate.validate import Rejected, Validate, inspect_image, normalise_text
from weft.demo.corpus import decompression_bomb

SPEC = ValidateSpec(min_image_side=8, max_image_pixels=4_000_000)


def jpeg(side: int = 32, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, format="JPEG")
    return buf.getvalue()


def reason(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejected) as err:
        fn(*args)
    return err.value.reason


def test_text_is_nfc_normalised_and_whitespace_collapsed() -> None:
    decomposed = "cafe\u0301  au\tlait\n".encode()
    assert normalise_text(decomposed, SPEC) == "caf\u00e9 au lait"


def test_invalid_utf8_is_quarantined() -> None:
    assert reason(normalise_text, b"a red \xff circle", SPEC) == "invalid_utf8"


def test_blank_text_is_empty_and_overlong_text_is_too_long() -> None:
    assert reason(normalise_text, b" \t\n", SPEC) == "empty_text"
    assert reason(normalise_text, b"x" * 5000, ValidateSpec(max_text_chars=4096)) == "long_text"
    assert reason(normalise_text, None, SPEC) == "missing_text"


def test_the_default_text_limit_admits_long_web_documents() -> None:
    """A 400-word document (about 2,500 characters) and a 20,000-word one (about 120,000) are
    ordinary web text; the old default of 4,096 characters quarantined them as long_text."""
    words = "curation keeps ordinary long documents whole "
    for n in (400, 20_000):
        text = (words * (n // 6 + 1)).encode()
        assert normalise_text(text, ValidateSpec())


def test_good_image_reports_format_size_and_mode() -> None:
    info = inspect_image(jpeg(40), SPEC)
    assert (info.format, info.width, info.height, info.mode) == ("JPEG", 40, 40, "RGB")


def test_truncated_jpeg_is_undecodable() -> None:
    data = jpeg(64)
    assert reason(inspect_image, data[: len(data) // 2], SPEC) == "image_undecodable"


def test_zero_byte_image_is_empty() -> None:
    assert reason(inspect_image, b"", SPEC) == "empty_image"


def test_garbage_bytes_are_undecodable() -> None:
    assert reason(inspect_image, b"not an image at all", SPEC) == "image_undecodable"


def test_decompression_bomb_is_caught_from_the_header() -> None:
    bomb = decompression_bomb(20_000)
    assert len(bomb) < 200_000  # tiny file, 400 M pixels
    with pytest.raises(Rejected) as err:
        inspect_image(bomb, SPEC)
    assert err.value.reason == "image_too_many_pixels"
    assert "20000x20000" in str(err.value)


def test_tiny_image_and_disallowed_format_are_quarantined() -> None:
    assert reason(inspect_image, jpeg(4), SPEC) == "image_too_small"
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="BMP")
    assert reason(inspect_image, buf.getvalue(), SPEC) == "image_format"


def test_validate_stage_quarantines_bad_rows_and_keeps_good_ones() -> None:
    rows = [
        (b"a red square", jpeg()),
        (b"\xff\xfe", jpeg()),
        (b"a blue circle", b""),
        (b"only text", None),
    ]
    batch = pa.Table.from_pylist(
        [
            {
                "id": row_id("s", str(i)),
                "source_uri": "s",
                "key": str(i),
                "text_bytes": t,
                "image": im,
                "status": KEPT,
            }
            for i, (t, im) in enumerate(rows)
        ],
        schema=READ_SCHEMA,
    )
    out = Validate(SPEC)(batch)
    assert out["status"].to_pylist() == [KEPT, QUARANTINED, QUARANTINED, KEPT]
    assert out["reason"].to_pylist() == [None, "invalid_utf8", "empty_image", None]
    assert out["stage"].to_pylist() == [None, "validate", "validate", None]
    assert out["image_width"].to_pylist() == [32, None, None, None]
    # a quarantined row carries no image bytes onward
    assert out["image"].to_pylist()[1:3] == [None, None]
