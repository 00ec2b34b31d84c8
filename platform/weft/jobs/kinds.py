"""Which `weft` command runs a spec: from the fields at its top, or as asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast, get_args

from weft.specs import SpecError

Kind = Literal["curate", "train", "tune", "index", "quality"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# The command each kind runs, before the spec's path.
COMMANDS: dict[Kind, tuple[str, ...]] = {
    "curate": ("curate",),
    "train": ("train",),
    "tune": ("tune",),
    "index": ("index", "--spec"),
    "quality": ("eval", "models"),
}


def kind_of(spec: Mapping[str, Any], where: str) -> Kind:
    """The kind whose spec has these top-level fields: `inputs` a curation's, `space` a
    sweep's, `test` a quality spec's, a `data` block a training run's, a `data` URI with a
    `model` an index's."""
    if "inputs" in spec:
        return "curate"
    if "space" in spec:
        return "tune"
    if "test" in spec:
        return "quality"
    if isinstance(spec.get("data"), Mapping):
        return "train"
    if isinstance(spec.get("data"), str) and "model" in spec:
        return "index"
    raise SpecError(
        f"{where}: not a curation, training, sweep, index or quality spec (no inputs, space, "
        f"test or data field); say which with --kind {'|'.join(KINDS)}"
    )


def parse_kind(value: str) -> Kind:
    if value not in KINDS:
        raise SpecError(f"kind: {value!r} is not one of {', '.join(KINDS)}")
    return cast(Kind, value)


def command(kind: Kind, spec: str) -> list[str]:
    """The `weft` arguments that run `spec` as `kind`."""
    return [*COMMANDS[kind], spec]
