"""A small synthetic image-text corpus with known flaws, for the demo, tests and benchmarks.

Shapes and colours with matching captions, as WebDataset shards, a Parquet file and JSONL
documents, with planted exact duplicates and broken records of every kind `validate` and
the readers must catch. `manifest.json` beside the data says what was planted where.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from weft import storage
from weft.curate.shards import tar_shard
from weft.specs import StorageSpec

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 180),
    "orange": (250, 140, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SIZES = {"small": 0.25, "medium": 0.4, "large": 0.6}
TEMPLATES = (
    "a {size} {colour} {shape} on a {bg} background",
    "{colour} {shape}, {size}, over {bg}",
    "a photo of a {colour} {shape} against {bg}",
    "the {shape} is {colour} and the background is {bg}",
)
# The quarantine reason each kind of planted flaw must get in the report.
FLAWS = {
    "truncated_jpeg": "image_undecodable",
    "zero_byte_image": "empty_image",
    "invalid_utf8": "invalid_utf8",
    "empty_caption": "empty_text",
    "decompression_bomb": "image_too_many_pixels",
    "missing_caption": "missing_text",
    "bad_json_line": "bad_json",
}


@dataclass
class Manifest:
    """What the generator planted; tests and `calibrate` compare the report against it."""

    pairs: int = 0
    documents: int = 0
    exact_duplicates: int = 0
    # planted near duplicates: {"a_uri", "a_key", "b_uri", "b_key", "jaccard", "kind"}
    near_duplicates: list[dict[str, object]] = field(default_factory=list)
    flaws: dict[str, int] = field(default_factory=dict)
    truncated_shards: list[str] = field(default_factory=list)
    bad_schema_files: list[str] = field(default_factory=list)


def draw(rng: np.random.Generator, side: int) -> tuple[Image.Image, str]:
    """One image of a shape and its caption. A gentle light gradient in a random direction
    keeps images with the same caption apart; faint noise makes every image unique."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour, bg = rng.choice(list(COLOURS), size=2, replace=False)
    size = list(SIZES)[rng.integers(len(SIZES))]
    img = Image.new("RGB", (side, side), COLOURS[bg])
    d = ImageDraw.Draw(img)
    r = SIZES[size] * side / 2
    cx, cy = rng.uniform(r, side - r, size=2)
    fill = COLOURS[colour]
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    else:
        w = r / 3
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1, 1, side)
    light = 40 * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])  # (H, W)
    noise = rng.integers(-6, 7, size=(side, side, 3))
    pixels = np.asarray(img, dtype=np.float64) + light[:, :, None] + noise
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    return Image.fromarray(pixels), template.format(size=size, colour=colour, shape=shape, bg=bg)


_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "tu",
    "ve",
    "sen",
    "dor",
    "pli",
    "gan",
    "es",
    "ur",
    "no",
    "bi",
)
# Planted similarities. None sits on 0.8, the default threshold, where an estimate from 128
# permutations is a coin toss; see `weft curate calibrate` for recall by similarity.
NEAR_JACCARDS = (0.3, 0.5, 0.6, 0.7, 0.86, 0.9, 0.95)


def vocabulary(size: int = 3000, seed: int = 7) -> list[str]:
    """Pseudo-words of two to four syllables, the same for every run."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words["".join(_SYLLABLES[i] for i in rng.integers(len(_SYLLABLES), size=n))] = None
    return list(words)


def word_jaccard(a: list[str], b: list[str], n: int = 5) -> float:
    """Exact Jaccard similarity of the word n-gram sets (the ground truth for MinHash)."""
    sa = {tuple(a[i : i + n]) for i in range(len(a) - n + 1)}
    sb = {tuple(b[i : i + n]) for i in range(len(b) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def near_copy(
    words: list[str], target: float, vocab: list[str], rng: np.random.Generator
) -> tuple[list[str], float]:
    """Replace random words while the 5-gram Jaccard similarity stays at `target` or above
    (at least one word is replaced, so the copy is never identical)."""
    copy, similarity = list(words), 1.0
    while True:
        trial = list(copy)
        trial[int(rng.integers(len(trial)))] = vocab[int(rng.integers(len(vocab)))]
        trial_similarity = word_jaccard(words, trial)
        if trial_similarity < target and similarity < 1.0:
            return copy, similarity
        copy, similarity = trial, trial_similarity


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=90) if fmt == "JPEG" else img.save(buf, format=fmt)
    return buf.getvalue()


def decompression_bomb(side: int = 20_000) -> bytes:
    """A valid PNG of side x side 1-bit pixels (400 M at the default) in about 50 kB."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(row * side, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def generate(
    out_uri: str,
    pairs: int = 2000,
    shards: int = 8,
    documents: int = 400,
    side: int = 64,
    seed: int = 0,
    flaws: bool = True,
    storage_spec: StorageSpec | None = None,
) -> Manifest:
    """Write the corpus under `out_uri`: `pairs/*.tar`, `parquet/*.parquet`, `docs/*.jsonl`."""
    rng = np.random.default_rng(seed)
    root = storage.resolve(out_uri, storage_spec)
    for part in ("pairs", "parquet", "docs"):
        storage.delete(root.join(part))
    with storage.storage_errors(root.uri):
        root.fs.create_dir(root.path, recursive=True)
    m = Manifest()
    formats = ("JPEG", "JPEG", "JPEG", "PNG", "WEBP")

    samples: list[tuple[str, dict[str, bytes]]] = []
    for i in range(pairs):
        img, caption = draw(rng, side)
        fmt = formats[i % len(formats)]
        ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
        text = (
            {"json": json.dumps({"caption": caption, "key": f"{i:09d}"}).encode()}
            if i % 7 == 0
            else {"txt": caption.encode()}
        )
        samples.append((f"{i:09d}", {ext: encode(img, fmt), **text}))
    m.pairs = len(samples)

    n_dups = pairs // 20
    for j, src in enumerate(rng.choice(len(samples), size=n_dups, replace=False)):
        samples.append((f"dup{j:06d}", dict(samples[int(src)][1])))
    m.exact_duplicates += n_dups

    near_pairs = []  # resized and re-encoded copies with the same caption
    for j, src in enumerate(rng.choice(pairs, size=pairs // 40, replace=False)):
        key, parts = samples[int(src)]
        image = Image.open(
            io.BytesIO(next(v for e, v in parts.items() if e not in ("txt", "json")))
        )
        smaller = image.convert("RGB").resize(
            (side * 9 // 10, side * 9 // 10), Image.Resampling.LANCZOS
        )
        text = {e: v for e, v in parts.items() if e in ("txt", "json")}
        samples.append((f"near{j:06d}", {"jpg": encode(smaller, "JPEG"), **text}))
        near_pairs.append((key, f"near{j:06d}"))
    m.pairs += len(near_pairs)

    if flaws:
        img, caption = draw(rng, side)
        jpeg = encode(img, "JPEG")
        broken = {
            "truncated_jpeg": {"jpg": jpeg[: len(jpeg) // 2], "txt": caption.encode()},
            "zero_byte_image": {"png": b"", "txt": caption.encode()},
            "invalid_utf8": {
                "jpg": encode(draw(rng, side)[0], "JPEG"),
                "txt": b"a red \xff\xfe circle",
            },
            "empty_caption": {"jpg": encode(draw(rng, side)[0], "JPEG"), "txt": b"  \n\t "},
            "decompression_bomb": {"png": decompression_bomb(), "txt": b"a white square"},
            "missing_caption": {"jpg": encode(draw(rng, side)[0], "JPEG")},
        }
        for name, parts in broken.items():
            samples.append((f"flaw-{name}", parts))
            m.flaws[name] = 1
    order = rng.permutation(len(samples))
    samples = [samples[i] for i in order]

    parquet_rows = samples[: len(samples) // 10]
    tar_samples = samples[len(parquet_rows) :]
    per_shard = -(-len(tar_samples) // shards)
    where = {k: root.join("parquet", "pairs-00000.parquet").uri for k, _ in parquet_rows}
    for s in range(shards):
        shard = tar_samples[s * per_shard : (s + 1) * per_shard]
        loc = root.join("pairs", f"shard-{s:05d}.tar")
        storage.write_bytes(loc, tar_shard(shard))
        where |= {k: loc.uri for k, _ in shard}
    m.near_duplicates += [
        {
            "a_uri": where[a],
            "a_key": a,
            "b_uri": where[b],
            "b_key": b,
            "jaccard": 1.0,
            "kind": "pair",
        }
        for a, b in near_pairs
    ]

    table = pa.table(
        {
            "key": [k for k, _ in parquet_rows],
            "image": [
                next((p[e] for e in ("jpg", "png", "webp") if e in p), None)
                for _, p in parquet_rows
            ],
            "caption": [
                p["txt"]
                if "txt" in p
                else json.loads(p["json"])["caption"].encode()
                if "json" in p
                else None
                for _, p in parquet_rows
            ],
        },
        schema=pa.schema([("key", pa.string()), ("image", pa.binary()), ("caption", pa.binary())]),
    )
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    storage.write_bytes(root.join("parquet", "pairs-00000.parquet"), buf.getvalue().to_pybytes())

    vocab = vocabulary()
    docs = [
        [vocab[i] for i in rng.integers(len(vocab), size=int(rng.integers(150, 300)))]
        for _ in range(documents)
    ]
    records = [{"id": f"doc{i:06d}", "text": " ".join(d)} for i, d in enumerate(docs)]
    records += [
        {"id": f"docdup{i:06d}", "text": r["text"]}
        for i, r in enumerate(records[: documents // 20])
    ]
    m.exact_duplicates += documents // 20
    lines = [json.dumps(r).encode() for r in records]
    if flaws:
        lines.insert(len(lines) // 2, b'{"text": "unterminated')
        m.flaws["bad_json_line"] = 1
    originals = root.join("docs", "docs-00000.jsonl")
    storage.write_bytes(originals, b"\n".join(lines) + b"\n")
    copies = root.join("docs", "docs-00001.jsonl")
    near_lines = []
    labelled = []  # for `weft calibrate`
    for j, src in enumerate(rng.choice(documents, size=documents // 4, replace=False)):
        target = NEAR_JACCARDS[j % len(NEAR_JACCARDS)]
        words, similarity = near_copy(docs[int(src)], target, vocab, rng)
        near_lines.append(json.dumps({"id": f"near{j:06d}", "text": " ".join(words)}).encode())
        labelled.append(
            json.dumps({"a": " ".join(docs[int(src)]), "b": " ".join(words), "jaccard": similarity})
        )
        m.near_duplicates.append(
            {
                "a_uri": originals.uri,
                "a_key": f"doc{int(src):06d}",
                "b_uri": copies.uri,
                "b_key": f"near{j:06d}",
                "jaccard": similarity,
                "kind": "document",
            }
        )
    storage.write_bytes(copies, b"\n".join(near_lines) + b"\n")
    storage.write_bytes(root.join("near_pairs.jsonl"), "\n".join(labelled).encode() + b"\n")
    m.documents = len(records) + len(near_lines)

    if flaws:
        fresh = [
            (f"cut{i:06d}", {"jpg": encode(img, "JPEG"), "txt": text.encode()})
            for i, (img, text) in enumerate(draw(rng, side) for _ in range(3))
        ]
        whole = tar_shard(fresh)
        with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
            cut = tar.getmembers()[-1].offset_data + 10  # inside the last member's data
        truncated = root.join("pairs", "shard-truncated.tar")
        storage.write_bytes(truncated, whole[:cut])
        m.pairs += 2  # the two samples before the cut are intact
        m.truncated_shards.append(truncated.uri)
        wrong = pa.table({"url": ["http://example.invalid/x.jpg"], "alt": ["a cat"]})
        buf = pa.BufferOutputStream()
        pq.write_table(wrong, buf)
        bad = root.join("parquet", "pairs-wrong-schema.parquet")
        storage.write_bytes(bad, buf.getvalue().to_pybytes())
        m.bad_schema_files.append(bad.uri)
    storage.write_bytes(root.join("manifest.json"), json.dumps(m.__dict__, indent=2).encode())
    return m
