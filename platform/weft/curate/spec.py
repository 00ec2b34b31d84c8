"""Curation's specs (`pipelines/*.yaml`): the inputs, the checks a row must pass, the
deduplication and filters, and the `CurateSpec` that holds them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from weft.specs import MAX_IMAGE_PIXELS, MlflowSpec, NsfwSpec, StorageSpec, _Spec


class InputSpec(_Spec):
    """One input: a file, a folder or a glob of files, local or `s3://`, in one format.

    `webdataset`: tar shards of `key.jpg|png|webp` + `key.txt|json` (img2dataset layout).
    `parquet`: one row per pair, image bytes and text in the named columns.
    `jsonl`: text-only documents, one JSON object per line.

    The limits are on decompressed bytes, checked as a file streams, so a decompression bomb
    is stopped at bounded memory. The record limit sits above `validate.max_image_bytes` and
    the longest text `validate` admits, so real records meet validate's own limits first;
    the file limit is several times the largest usual shard (WebDataset, JSONL: 1-4 GB).
    """

    uri: str
    format: Literal["webdataset", "parquet", "jsonl"]
    image_column: str = "image"
    text_column: str = "text"
    key_column: str | None = Field(
        default=None,
        description="Column (or JSON field) holding a row's key; where it is missing or null, "
        "the row's position (JSONL: its line number). Row ids never depend on it.",
    )
    json_text_field: str = Field(
        default="caption", description="Field of a webdataset `.json` sidecar holding the caption."
    )
    max_record_bytes: int = Field(
        default=64 * 1024**2,
        ge=1,
        description="A record (JSONL line, WebDataset sample, Parquet row) larger than this is "
        "quarantined (record_too_large) without being held whole.",
    )
    max_file_bytes: int = Field(
        default=16 * 1024**3,
        ge=1,
        description="A file decompressing to more stops there (file_too_large); the records "
        "before are kept.",
    )
    allow_missing: bool = Field(
        default=False,
        description="A file the store cannot serve (gone, denied, unreachable) is reported as "
        "a file error (file_unavailable) instead of failing the run.",
    )

    @model_validator(mode="after")
    def _limits(self) -> InputSpec:
        if self.max_record_bytes > self.max_file_bytes:
            raise ValueError("max_record_bytes is larger than max_file_bytes")
        return self


ImageFormat = Literal["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]


class ValidateSpec(_Spec):
    """Limits a row must meet; a row that fails one is quarantined with the reason."""

    min_text_chars: int = Field(default=1, ge=1)
    max_text_chars: int = Field(
        default=1_000_000,
        ge=1,
        description="Longer texts are quarantined; the default admits long web documents.",
    )
    max_image_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS, ge=1, description="Decompression-bomb guard."
    )
    min_image_side: int = Field(default=8, ge=1)
    image_formats: tuple[ImageFormat, ...] = ("JPEG", "PNG", "WEBP")

    @model_validator(mode="after")
    def _text_bounds(self) -> ValidateSpec:
        if self.min_text_chars > self.max_text_chars:
            raise ValueError("min_text_chars is larger than max_text_chars")
        return self


class ExactDedupSpec(_Spec):
    """Exact duplicates by content hash. `match` says what must be identical."""

    enabled: bool = True
    match: Literal["both", "text", "image"] = "both"


class NearDedupSpec(_Spec):
    """Near-duplicate text by MinHash-LSH, images by perceptual hash. Bands x rows default to
    datasketch's optimum for `threshold`; a candidate pair is removed only when its Jaccard
    similarity reaches it (and, as `match` says, its images match)."""

    enabled: bool = True
    match: Literal["text", "image", "both"] = Field(
        default="both",
        description="Image-text pairs: `both` needs captions and images to agree; `text` or "
        "`image` one of them. Documents always match by text. Images match when their "
        "perceptual hashes are within `image_max_distance` bits and their thumbnails' "
        "similarity reaches `image_threshold`. Under `both` an edited caption must keep its "
        "Jaccard at `threshold`: recasing or appending a word to a caption of 8+ words does; "
        "changing a word of a short caption (word 5-grams) does not, so such copies need "
        "`image`.",
    )
    image_max_distance: int = Field(
        default=6,
        ge=0,
        le=64,
        description="Bits between the perceptual hashes of candidate images (the LSH cuts "
        "the 64 bits into this many + 1 chunks; more finds more copies, slower).",
    )
    image_threshold: float = Field(
        default=0.92,
        ge=0.0,
        le=1.0,
        description="Least similarity of two candidate images' 32 x 32 thumbnails (1 - the "
        "largest mean difference over a 4 x 4 block, a 1-pixel shift forgiven).",
    )
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(default=5, ge=1, le=64)
    num_perm: int = Field(default=128, ge=16, le=1024)
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    engine: Literal["datasketch", "rensa"] = "datasketch"
    verify: Literal["exact", "estimate"] = Field(
        default="exact",
        description="How a candidate pair's Jaccard is checked: exactly, from the shingles "
        "of both texts (the candidates' texts come to the driver), or estimated from the "
        "signatures (no text leaves the workers; pairs within ~0.05 of the threshold are a "
        "coin toss).",
    )
    seed: int = 1

    @model_validator(mode="after")
    def _bands_fit(self) -> NearDedupSpec:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither")
        if self.bands and self.rows and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} > num_perm {self.num_perm}")
        return self


class LangIdSpec(_Spec):
    """fastText language ID. `allowed` lists ISO 639 codes (empty: any language); a row whose
    top language scores under `min_score` is removed as uncertain."""

    enabled: bool = True
    allowed: list[str] = Field(default=[])
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)


class CurateSpec(_Spec):
    """A curation job: inputs in, curated Parquet plus removed/, quarantine/ and a report out."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    inputs: list[InputSpec] = Field(min_length=1)
    output: str
    storage: StorageSpec = StorageSpec()
    validate_: ValidateSpec = Field(default=ValidateSpec(), alias="validate")
    exact_dedup: ExactDedupSpec = ExactDedupSpec()
    near_dedup: NearDedupSpec = NearDedupSpec()
    langid: LangIdSpec = LangIdSpec()
    nsfw: NsfwSpec = NsfwSpec()
    batch_size: int = Field(default=256, ge=1, description="Rows per Ray Data batch.")
    rows_per_file: int = Field(default=10_000, ge=1, description="Minimum rows per output file.")
    mlflow: MlflowSpec = MlflowSpec()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
