"""Sweep specs (`jobs/sweep-*.yaml`). A training sweep: a base training spec, the values to
try at dotted paths of it, the metric to rank trials by, and how Ray Tune runs them. A
guidance sweep: a trained diffusion model, the generation settings to try, the CLIP that
judges the images, and the objective that picks the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from weft.models.diffusion import GenerationConfig
from weft.specs import MlflowSpec, SpecError, StorageSpec, _Spec, parse_spec, read_yaml
from weft.train.spec import DataSpec, TrainSpec

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
        in_model = parents[:1] == ["model"]  # the model's config: ModelSpec checks it
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


# What each guidance objective metric wants: a higher CLIP score, a lower Fréchet distance.
OBJECTIVE_MODES: dict[str, Literal["min", "max"]] = {"clip_score": "max", "frechet": "min"}


class Objective(_Spec):
    """The setting with the best `metric` among those whose Fréchet distance is at most
    `frechet_within_percent` above the lowest any trial reached (None: no such bound): the
    most prompt-faithful images that still look like the data."""

    metric: Literal["clip_score", "frechet"] = "clip_score"
    frechet_within_percent: float | None = Field(default=25.0, ge=0)


class GuidanceSpec(_Spec):
    """A Ray Tune sweep of a trained diffusion model's generation settings (the fields of its
    config's `generation`: `cfg_scale`, `steps`, `negative_prompt`). Each trial draws the
    first `prompts` captions of the held-out split and a trained CLIP scores the images; the
    chosen setting is saved into a copy of the model, logged as the sweep run's model."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str = Field(
        description="The diffusion model: a folder `weft train` wrote (local or s3://), or "
        "an MLflow model URI (runs:/<run>/model, models:/<name>@<alias>)."
    )
    judge: str = Field(description="The CLIP that scores the images, addressed like `model`.")
    data: DataSpec = Field(description="Curated data whose held-out split gives the prompts.")
    prompts: int = Field(default=64, ge=2, description="Held-out captions drawn per trial.")
    seed: int = Field(default=0, description="The starting noise, the same in every trial.")
    space: dict[str, Dimension] = Field(min_length=1)
    objective: Objective = Objective()
    samples: int = Field(default=1, ge=1, description="Trials drawn (per grid point).")
    concurrent: int = Field(default=1, ge=1, description="Trials run at once.")
    cpus: float = Field(default=1.0, gt=0, description="CPUs of each trial.")
    output: str = Field(default=".weft/sweeps", description="Ray Tune's storage and the model.")
    storage: StorageSpec = StorageSpec()
    mlflow: MlflowSpec = MlflowSpec(experiment="weft-sweep")

    @field_validator("space")
    @classmethod
    def _generation_fields(cls, space: dict[str, Dimension]) -> dict[str, Dimension]:
        """Every path names a generation setting, and each example value is valid for it."""
        for path, dimension in space.items():
            if path not in GenerationConfig.model_fields:
                known = ", ".join(GenerationConfig.model_fields)
                raise ValueError(f"{path}: not a generation setting (known: {known})")
            for value in dimension.examples():
                try:
                    GenerationConfig.model_validate({path: value})
                except ValueError as err:
                    raise ValueError(f"{path} = {value!r}: {_first_error(err)}") from None
        return space

    @property
    def metric(self) -> str:
        return self.objective.metric

    @property
    def mode(self) -> Literal["min", "max"]:
        return OBJECTIVE_MODES[self.objective.metric]


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    return str(errors()[0]["msg"]) if callable(errors) else str(err)


def load_sweep(path: str | Path) -> SweepSpec | GuidanceSpec:
    """A sweep spec file: a guidance sweep when it names a trained `model` and no `base`."""
    data = read_yaml(path)
    if isinstance(data, dict) and "model" in data and "base" not in data:
        return parse_spec(GuidanceSpec, data, str(path))
    return parse_spec(SweepSpec, data, str(path))


AnySweep = SweepSpec | GuidanceSpec
