"""Declarative YAML specs, validated on load: the layer every stage's specs build on.

This module holds the `_Spec` base, `SpecError`, `FieldError`, the loaders (`load_spec`,
`parse_spec`, `read_yaml`, `format_validation_error`), `spec_hash`, and the sections several
stages read: `StorageSpec` (with its secrets), `MlflowSpec`, `NsfwSpec` (curation's filter
and serving's safety check) and `MAX_IMAGE_PIXELS`. Each stage's own specs live beside it
(`curate/spec.py`, `train/spec.py`, `tune/spec.py`, `registry/spec.py`, `quality/spec.py`).

Every spec model forbids unknown fields, so a typo in a YAML file is an error that names
the field instead of a setting that is silently ignored. `load_spec` turns any problem
with a file into a `SpecError` whose message reads `file: field.path: message`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError


class SpecError(ValueError):
    """A spec file that cannot be loaded; the message names the file and the field."""


class FieldError(ValueError):
    """A validator's error about a field below the one it checks (a model validator's, about
    one of its own fields): `path`, dotted from there, joins the error's location, so
    `load_spec` names that field. Read alone it says `path: message`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


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
        loc, msg = tuple(e["loc"]), e["msg"].removeprefix("Value error, ")
        if isinstance(cause := (e.get("ctx") or {}).get("error"), FieldError):
            loc, msg = (*loc, *cause.path.split(".")), cause.message
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        lines.append(f"{source}: {_field_path(loc)}: {msg}")
    return "\n".join(lines)


def parse_spec(model: type[S], data: object, source: str = "<spec>") -> S:
    """Validate already-parsed YAML data against a spec model."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(source, err)) from None


def unknown_fields(model: type[BaseModel], data: object, path: str = "") -> list[str]:
    """The dotted paths of the fields in `data` that `model` has not, looking into the models
    its fields hold (alone, optional or in lists): for a schema that ignores unknown fields
    (Ray Serve's), where a misspelled one would be silently dropped."""
    if not isinstance(data, dict):
        return []
    fields = {f.alias or name: f for name, f in model.model_fields.items()}
    fields |= {name: f for name, f in model.model_fields.items()}
    found = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            found.append(where)
            continue
        inner = _models_in(fields[key].annotation)
        if inner is None:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            found += unknown_fields(
                inner, item, f"{where}.{i}" if isinstance(value, list) else where
            )
    return found


def _models_in(annotation: object) -> type[BaseModel] | None:
    """The model an annotation holds: `M`, `M | None`, `list[M]`; else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _models_in(arg)
        if found is not None:
            return found
    return None


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
