"""What every offline corpus shares: splits fixed by a hash before any training, held-out
classes, the sharded WebDataset writer, and the manifest that says what was written and
what was skipped and why.

A corpus is `<out>/<split>/shard-NNNNN.tar` per split (`key.png` + `key.json`, the caption
in the sidecar's `caption`) and `<out>/manifest.json`; `weft curate` reads the shards like any
user data. A split holds whole *groups* (an emoji's variants, one drawing's copies), so no
test image has a near twin in training.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from weft import storage
from weft.curate.shards import tar_shard
from weft.specs import SpecError, StorageSpec

SPLITS = ("train", "val", "test", "heldout")


def require(packages: dict[Path, str], *paths: Path) -> None:
    """Each path exists, or a SpecError naming the Debian package that installs it."""
    for path in paths:
        if not path.exists():
            raise SpecError(f"{path} is missing: apt-get install {packages[path]}")


def hashed(text: str) -> int:
    """A stable number for `text`, the same on every run and machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest())


def split_of(group: str, held_out: bool, val_percent: int, test_percent: int) -> str:
    """`heldout` for a held-out class, else train, val or test by a hash of the group."""
    if held_out:
        return "heldout"
    slot = hashed(group) % 100
    return (
        "test" if slot < test_percent else "val" if slot < test_percent + val_percent else "train"
    )


def with_english(languages: Iterable[str], per_item: int, field: str) -> list[str]:
    """`languages` with English first, each once; a SpecError naming `field` unless each
    item can have between 1 and that many records (one per language)."""
    chosen = list(dict.fromkeys(["en", *languages]))
    if not 1 <= per_item <= len(chosen):
        raise SpecError(f"{field}: between 1 and the {len(chosen)} languages")
    return chosen


def sample(png: bytes, sidecar: dict[str, Any]) -> dict[str, bytes]:
    """A record's members: the drawing (`key.png`) and its sidecar (`key.json`)."""
    return {"png": png, "json": json.dumps(sidecar).encode()}


def check_percents(val_percent: int, test_percent: int) -> None:
    if min(val_percent, test_percent) < 0 or val_percent + test_percent >= 100:
        raise SpecError("val_percent + test_percent: must leave a training split")


@dataclass
class Manifest:
    """What a corpus writer wrote: records and items (distinct images) per split, what it
    skipped and why, and what the source says about itself (`about`)."""

    source: str
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    skipped: dict[str, int] = field(default_factory=dict)
    about: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def write_shards(
    out: str,
    records: Iterable[tuple[str, str, dict[str, bytes]]],
    manifest: Manifest,
    shard_records: int = 2000,
    storage_spec: StorageSpec | None = None,
) -> Manifest:
    """Write (split, key, {ext: bytes}) records as shards of `shard_records` under
    `<out>/<split>/` (replacing what was there), counting each in the manifest, then
    `<out>/manifest.json`."""
    root = storage.resolve(out, storage_spec)
    pending: dict[str, list[tuple[str, dict[str, bytes]]]] = {s: [] for s in SPLITS}
    written = dict.fromkeys(SPLITS, 0)

    def flush(split: str) -> None:
        storage.write_bytes(
            root.join(split, f"shard-{written[split]:05d}.tar"), tar_shard(pending[split])
        )
        written[split] += 1
        pending[split] = []

    for split in SPLITS:
        storage.delete(root.join(split))
    for split, key, parts in records:
        if "." in key:
            raise ValueError(f"key {key!r}: a WebDataset key holds no dot")
        manifest.records[split] += 1
        pending[split].append((key, parts))
        if len(pending[split]) == shard_records:
            flush(split)
    for split in SPLITS:
        if pending[split]:
            flush(split)
    storage.write_bytes(root.join("manifest.json"), json.dumps(asdict(manifest), indent=2).encode())
    return manifest


def on_white(image: Image.Image, size: int) -> bytes | None:
    """A drawing flattened on white (transparent parts white), cropped to what is drawn and
    `size` pixels square with its aspect kept (centred), as PNG; None if nothing is drawn
    (all transparent or white). An RGBA `image` is shrunk in place, not copied: some drawings
    are gigabytes decoded."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    rgba.thumbnail((4 * size, 4 * size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB")
    drawn = ImageChops.difference(flat, Image.new("RGB", flat.size, "white")).getbbox()
    if not drawn:
        return None
    flat = flat.crop(drawn)
    flat.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(flat, ((size - flat.width) // 2, (size - flat.height) // 2))
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()


@contextmanager
def trusted_pixels(limit: int) -> Iterator[None]:
    """Let Pillow open images of up to `limit` pixels inside the block: for files of an
    installed package, some of which are drawings exported at huge sizes. Served and curated
    images keep `weft.specs.MAX_IMAGE_PIXELS`."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before
