"""Training's specs (`jobs/clip.yaml` and the like): `TrainSpec` and its sections (model,
data, optimiser, strategy, workers, checkpoints, evaluation)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from weft.specs import FieldError, MlflowSpec, StorageSpec, _Spec
from weft.train.views import View


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
    text_views: list[View] = Field(
        default=["caption"],
        min_length=1,
        description="Each epoch a training row's text is one of these views of its caption "
        '("name: keyword, keyword"), drawn at random: caption (whole), name, keyword (one), '
        "sentence (the name in an English sentence, for English rows), wordnet (a synonym or "
        "broader word of the name or a keyword, for English rows). See "
        "weft.train.views.",
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
    calibration: str | None = Field(
        default=None,
        description="Inspector: a local gold set folder (`weft data inspection`'s gold/val) "
        "on which each evaluation calibrates the abstention thresholds the exported model "
        "carries.",
    )
    target_accuracy: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Inspector: how often the answers it does not abstain on must be right on "
        "the calibration set.",
    )


class ModelSpec(_Spec):
    """A named model from `weft.models.registry`, with fields of its config overridden (for
    CLIP: `init_temperature`, `learn_temperature`; nested fields as mappings), checked
    against that config on load (a sweep's trials each load theirs). In YAML a bare name is
    the model as named."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(description="A name from weft.models.registry (e.g. clip-tiny).")

    @model_validator(mode="after")
    def _fits_its_config(self) -> ModelSpec:
        # imported here, not with the module: the registry imports torch
        from weft.models import registry

        try:
            registry.config(self.name, self.overrides)  # a bad override: a FieldError
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        return self

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def kind(self) -> str:
        """The model's kind: `clip`, `captioner`, `diffusion` or `inspector`."""
        from weft.models import registry

        return registry.config(self.name)[0]


class TrainSpec(_Spec):
    """A training job: a named model from `weft.models.registry`, trained by Ray Train on the
    curated dataset and tracked in MLflow.

    Every rule the spec alone decides is checked here, on load. Those that need the cluster
    or the data are checked when the job starts, before any worker does (`train/run.py`):
    workers the Ray cluster has room for, an `output` that can be written, an `eval.clip`
    that loads as a CLIP, and enough pairs in `data` for a batch per worker and a held-out
    split."""

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

    @model_validator(mode="after")
    def _strategy_fits_the_model(self) -> TrainSpec:
        zero3 = self.strategy.name == "deepspeed" and self.strategy.zero_stage == 3
        if zero3 and self.model.kind == "diffusion":
            raise FieldError(
                "strategy.zero_stage",
                "ZeRO-3 partitions parameters where the diffusion EMA cannot follow them; use "
                "zero_stage 1 or 2, or strategy fsdp",
            )
        return self
