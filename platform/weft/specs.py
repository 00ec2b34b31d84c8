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
# The most pixels an image may claim in its header before anything decodes it: curation's
# default and the serving app's limit (a 20 KB PNG can claim 169 megapixels, 0.7 GB decoded).
MAX_IMAGE_PIXELS = 64_000_000


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


def spec_hash(spec: _Spec) -> str:
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
