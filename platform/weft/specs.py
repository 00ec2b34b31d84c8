"""Declarative YAML specs, validated on load.

Every spec model forbids unknown fields, so a typo in a YAML file is an error that names
the field instead of a setting that is silently ignored. `load_spec` turns any problem
with a file into a `SpecError` whose message reads `file: field.path: message`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)


class SpecError(ValueError):
    """A spec file that cannot be loaded; the message names the file and the field."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSpec(_Spec):
    """S3 settings; each one left out falls back to the standard AWS environment variables.

    The secret key and session token are `SecretStr`s: printed, dumped or logged they read
    `**********`; pickled (to Ray workers) they keep their value. The access key id names the
    identity, as in AWS's own logs, and stays readable.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = Field(
        default=None, description="For temporary credentials, with access_key_id."
    )


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


NudeNetLabel = Literal[
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
]
ImageFormat = Literal["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
# The most pixels an image may claim in its header before anything decodes it: curation's
# default and the serving app's limit (a 20 KB PNG can claim 169 megapixels, 0.7 GB decoded).
MAX_IMAGE_PIXELS = 64_000_000


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
    allowed: list[str] = []
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)


class NsfwSpec(_Spec):
    """NudeNet on every image: a row is unsafe when any of `unsafe_labels` is detected with a
    score of at least `threshold`."""

    enabled: bool = True
    unsafe_labels: list[NudeNetLabel] = [
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    ]
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    actors: int = Field(default=2, ge=1, description="NudeNet actors (the slowest stage).")


class MlflowSpec(_Spec):
    enabled: bool = True
    experiment: str = "weft-curate"


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


class DataSpec(_Spec):
    """The curated dataset a training job streams: its image-text pairs, preprocessed on Ray
    Data workers. A fixed share of rows, picked by a hash of their id, is held out."""

    uri: str = Field(description="A curation output (its `data/` is read), local or s3://.")
    augment: bool = Field(default=True, description="Random flips and crops in training.")
    word_dropout: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Each word of a training caption is left out with this probability (one "
        "is always kept): a new view of the text every epoch.",
    )
    shuffle: Literal["global", "buffer"] = Field(
        default="global",
        description="global: every epoch reads the training rows in a new random order (Ray "
        "Data's all-to-all `random_shuffle`, seeded by the job's seed), so a batch is a fair "
        "draw even from a corpus stored sorted; buffer: only the rows within a few batches of "
        "each other are mixed (cheap, for corpora too large to shuffle whole).",
    )
    val_percent: float = Field(default=5.0, ge=0, lt=100)
    sources: list[str] = Field(
        default=[],
        description="Only the rows read from under these URIs (their `source_uri`), such as "
        "one split of a corpus curated whole; empty: every row.",
    )
    val_sources: list[str] = Field(
        default=[],
        description="The held-out rows are those read from under these URIs (a corpus's own "
        "validation split), not a hash share of the rows: `val_percent` is then unused.",
    )
    keys: str | None = Field(
        default=None,
        description="A regular expression a row's key must contain, e.g. `_en$`: the English "
        "captions of the emoji corpus; other rows are left out.",
    )
    text_pattern: str | None = Field(
        default=None,
        description="Train on the part of each text this regular expression finds (its first "
        "group, if it has one), e.g. `^[^:]+`: an emoji's name without its keywords; rows it "
        "does not match are left out.",
    )

    @field_validator("keys", "text_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return value


class OptimSpec(_Spec):
    """AdamW, linear warm-up then cosine decay, gradient clipping and accumulation."""

    lr: float = Field(default=3e-4, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(default=100, ge=0)
    max_steps: int = Field(default=1000, ge=1, description="Optimiser steps of the whole run.")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    grad_clip: float = Field(default=1.0, ge=0, description="Max gradient norm; 0 turns it off.")
    grad_accum: int = Field(default=1, ge=1)
    batch_size: int = Field(default=64, ge=1, description="Per worker and micro-batch.")


class StrategySpec(_Spec):
    name: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    zero_stage: Literal[1, 2, 3] = Field(default=2, description="DeepSpeed ZeRO stage.")


class WorkersSpec(_Spec):
    count: int = Field(default=2, ge=1)
    cpus: float = Field(
        default=1.0, gt=0, description="CPUs per worker; on CPU it computes on floor(cpus) threads."
    )
    gpu: bool = False


class CheckpointSpec(_Spec):
    every_steps: int = Field(default=200, ge=1)
    keep: int = Field(default=2, ge=1)
    max_failures: int = Field(default=2, ge=0, description="Worker failures a run survives.")


class EvalSpec(_Spec):
    every_steps: int = Field(default=200, ge=1)
    batches: int = Field(default=4, ge=1, description="Held-out batches per evaluation.")
    cfg_scales: list[float] = Field(default=[1.0, 3.0, 7.5], min_length=1)
    classes: list[str] = Field(
        default=[], description="CLIP zero-shot: class names found in the held-out captions."
    )
    sample_steps: int = Field(default=50, ge=1, description="DDIM steps of diffusion samples.")
    samples: int = Field(default=8, ge=2, description="Diffusion: images sampled per CFG scale.")
    clip: str | None = Field(
        default=None,
        description="Diffusion: a trained Weft CLIP (a model folder, local or s3://, or an "
        "MLflow model: runs:/<run>/model, models:/<name>@<alias>) that scores samples: CLIP "
        "score and Fréchet distance in its image-feature space.",
    )


class ModelSpec(_Spec):
    """A named model from `weft.models.registry`, with fields of its config overridden (for
    CLIP: `init_temperature`, `learn_temperature`; nested fields as mappings). Checked
    against that config when the job starts, so a sweep can vary them. In YAML a bare name
    is the model as named."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(description="A name from weft.models.registry (e.g. clip-tiny).")

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainSpec(_Spec):
    """A training job: a named model from `weft.models.registry`, trained by Ray Train on the
    curated dataset and tracked in MLflow."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: ModelSpec

    @field_validator("model", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    data: DataSpec
    optim: OptimSpec = OptimSpec()
    strategy: StrategySpec = StrategySpec()
    precision: Literal["fp32", "bf16"] = "fp32"
    workers: WorkersSpec = WorkersSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    eval: EvalSpec = EvalSpec()
    seed: int = 0
    output: str = Field(default=".weft/runs", description="Ray Train storage: local or s3://.")
    storage: StorageSpec = StorageSpec()
    mlflow: MlflowSpec = MlflowSpec(experiment="weft-train")


CREDENTIALS = {"access_key_id", "secret_access_key", "session_token"}


def spec_hash(spec: CurateSpec | TrainSpec) -> str:
    """A short hash of what a spec asks for. Its storage credentials are left out: the same
    job hashes the same with a rotated key, or with the keys in the environment."""
    body = spec.model_dump(mode="json", by_alias=True, exclude={"storage": CREDENTIALS})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


S = TypeVar("S", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line per problem: `source: field.path: message`."""
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        lines.append(f"{source}: {_field_path(tuple(e['loc']))}: {msg}")
    return "\n".join(lines)


def parse_spec(model: type[S], data: object, source: str = "<spec>") -> S:
    """Validate already-parsed YAML data against a spec model."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(source, err)) from None


def read_yaml(path: str | Path) -> object:
    """A YAML file's data, unvalidated; a file that cannot be read or parsed is a
    `SpecError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the file: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None


def load_spec(model: type[S], path: str | Path) -> S:
    """Read a YAML spec file and validate it; every failure is a `SpecError`."""
    return parse_spec(model, read_yaml(path), str(path))
