"""A sweep spec (`jobs/sweep-*.yaml`): a base training spec, the values to try at dotted
paths of it, the metric to rank trials by, and how Ray Tune runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from weft.specs import MlflowSpec, SpecError, TrainSpec, _Spec, parse_spec

KINDS = ("choice", "grid", "uniform", "log_uniform")


class Dimension(_Spec):
    """The values one path takes: `choice` (sampled), `grid` (every one, each `samples`
    times), `uniform` or `log_uniform` ([low, high], sampled)."""

    choice: list[Any] | None = Field(default=None, min_length=1)
    grid: list[Any] | None = Field(default=None, min_length=1)
    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {len(given)})")
        bounds = self.uniform or self.log_uniform
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"[low, high] needs low < high (got {list(bounds)})")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise ValueError("log_uniform needs low > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    def examples(self) -> list[Any]:
        """Values that stand for the dimension when the base spec is checked with them."""
        return list(getattr(self, self.kind))


class SchedulerSpec(_Spec):
    """`asha` stops trials whose metric trails the others' at the same report; `none` runs
    every trial to its end."""

    name: Literal["asha", "none"] = "asha"
    grace_period: int = Field(default=1, ge=1, description="Reports before a trial may stop.")
    reduction_factor: float = Field(default=2.0, ge=2)


class SweepSpec(_Spec):
    """A Ray Tune sweep: trials of `base` with the values of `space` set at their paths."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    base: TrainSpec = Field(description="A training spec, inline or the path of its YAML file.")
    fixed: dict[str, Any] = Field(
        default={}, description="Values set at dotted paths of the base for every trial."
    )
    space: dict[str, Dimension] = Field(min_length=1)
    metric: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    scheduler: SchedulerSpec = SchedulerSpec()
    samples: int = Field(default=1, ge=1, description="Trials drawn (per grid point).")
    concurrent: int = Field(default=1, ge=1, description="Trials run at once.")
    output: str = Field(default=".weft/sweeps", description="Ray Tune's storage.")
    mlflow: MlflowSpec = MlflowSpec(experiment="weft-sweep")

    @field_validator("base", mode="before")
    @classmethod
    def _read_base(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return yaml.safe_load(Path(value).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"cannot read the training spec {value}: {err}") from None

    @field_validator("fixed")
    @classmethod
    def _fix_base(cls, fixed: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The fixed values leave a valid training spec."""
        if fixed and "base" in info.data:
            try:
                trial_spec(info.data["base"], fixed)
            except SpecError as err:
                raise ValueError(str(err)) from None
        return fixed

    @property
    def trial_base(self) -> TrainSpec:
        """The base spec with the fixed values set: what every trial starts from."""
        return trial_spec(self.base, self.fixed)

    @field_validator("space")
    @classmethod
    def _paths_name_fields(
        cls, space: dict[str, Dimension], info: ValidationInfo
    ) -> dict[str, Dimension]:
        """Every path, set to each of its example values, leaves a valid training spec."""
        if "base" not in info.data or "fixed" not in info.data:
            return space  # invalid: their own errors say why
        base = trial_spec(info.data["base"], info.data["fixed"])
        for path, dimension in space.items():
            for value in dimension.examples():
                try:
                    trial_spec(base, {path: value})
                except SpecError as err:
                    raise ValueError(f"{path} = {value!r}: {err}") from None
        return space

    @model_validator(mode="after")
    def _metric_is_reported(self) -> SweepSpec:
        """Tune ranks the reports that come with each checkpoint: a held-out metric must be
        fresh in every one."""
        base = self.trial_base
        ev, ck = base.eval.every_steps, base.checkpoint.every_steps
        if self.metric.startswith("val/") and ck % ev:
            raise ValueError(
                f"metric {self.metric} is reported with each checkpoint: "
                f"base.checkpoint.every_steps ({ck}) must be a multiple of "
                f"base.eval.every_steps ({ev})"
            )
        return self


def trial_spec(base: TrainSpec, values: dict[str, Any], name: str | None = None) -> TrainSpec:
    """`base` with each dotted path of `values` set (a path under `model` may name a field
    of the model's config), renamed to `name`; a SpecError names a bad path."""
    data = base.model_dump(mode="python")
    for path, value in values.items():
        *parents, leaf = path.split(".")
        in_model = parents[:1] == ["model"]  # the model's config: checked when the job starts
        node = data
        for key in parents:
            child = node.setdefault(key, {}) if in_model else node.get(key)
            if not isinstance(child, dict):
                raise SpecError(f"{path}: no such field in the training spec")
            node = child
        if leaf not in node and not in_model:
            raise SpecError(f"{path}: no such field in the training spec")
        node[leaf] = value
    if name is not None:
        data["name"] = name
    return parse_spec(TrainSpec, data, "the trial's training spec")
