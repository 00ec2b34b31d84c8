"""The `weft eval` spec: which models to measure, on which curated splits, with which prompts."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from weft.data.items import in_group
from weft.specs import MlflowSpec, StorageSpec, _Spec


class ZeroShotClass(_Spec):
    """A held-out class: the groups whose drawings show it, and its name in each language."""

    groups: list[str] = Field(
        min_length=1,
        description="Groups (`weft.data.items.group_of`): an emoji subgroup, `symbola:<block>` "
        "or an openclipart folder, whose subfolders count too.",
    )
    names: dict[str, str] = Field(description="The class's name in each prompt language.")


class ZeroShotSpec(_Spec):
    """Zero-shot classification of held-out images: one prompt per class and language, the
    class's name put into the language's template."""

    templates: dict[str, str] = Field(
        default={"en": "{}"},
        description="A prompt template per language (`{}` takes the class name); English first.",
    )
    classes: dict[str, ZeroShotClass] = Field(
        min_length=2, description="The held-out classes, by label."
    )

    @model_validator(mode="after")
    def _every_language_named(self) -> ZeroShotSpec:
        for label, held in self.classes.items():
            missing = set(self.templates) - set(held.names)
            if missing:
                raise ValueError(
                    f"classes.{label}: no name in {', '.join(sorted(missing))} "
                    "(every language of zero_shot.templates needs one)"
                )
        return self

    def class_of(self, group: str) -> str | None:
        """The label of the class whose groups hold `group`, if one does."""
        return next(
            (c for c, held in self.classes.items() if any(in_group(group, g) for g in held.groups)),
            None,
        )


class QualitySpec(_Spec):
    """`weft eval`: the figures of the models given, on a curated corpus's test and held-out
    splits, written as a table (markdown and MLflow)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    data: str = Field(description="The curated corpus (a `weft curate` output), local or s3://.")
    test: list[str] = Field(
        min_length=1, description="The test split's source folders (its rows' `source_uri`)."
    )
    heldout: list[str] = Field(min_length=1, description="The held-out classes' source folders.")
    clip: str | None = Field(
        default=None,
        description="A CLIP: a model folder, runs:/<run>/model or models:/<name>@<alias>.",
    )
    judge: str | None = Field(
        default=None,
        description="A CLIP trained once and kept (a model folder), in whose spaces the "
        "diffusion model's drawings are judged, so that its figures compare across runs; the "
        "hash of its weights is written beside each. Without one, `clip` judges.",
    )
    reference: list[str] = Field(
        default=[],
        description="Another real split's source folders (val): the judge's Fréchet distance "
        "between its images and the test split's is the floor beside the drawings'.",
    )
    captioner: str | None = None
    diffusion: str | None = None
    vit_epochs: int | None = Field(
        default=None,
        ge=1,
        description="Train a ViT classifier this many epochs on Fashion-MNIST and measure it.",
    )
    zero_shot: ZeroShotSpec
    transfer: int | None = Field(
        default=None,
        ge=1,
        description="CLIP: name this many Fashion-MNIST test photographs of each clothing "
        "class that has an emoji by CLDR's names of it, in every language of the emoji corpus "
        "(pictures none of the drawing corpora holds); none: skip.",
    )
    recall_at: int = Field(default=10, ge=1, description="K of text→image recall@K.")
    cfg_scales: list[float] = Field(
        default=[1.0, 3.0, 7.5], min_length=1, description="Diffusion: guidance scales drawn at."
    )
    seed: int = Field(default=0, description="Diffusion: the starting noise.")
    drawn: int | None = Field(
        default=None,
        ge=2,
        description="Diffusion: draw from at most this many test drawings' names (a seeded "
        "sample; each costs a sampling run per guidance scale); none: every one.",
    )
    samples: int = Field(default=16, ge=1, description="Images in each sample grid.")
    tried: dict[str, str] = Field(
        default={},
        description="For a model (clip, captioner, diffusion, vit), what was tried to reach its "
        "bars: written under the table when one of them is not met.",
    )
    output: str = Field(default=".weft/quality", description="Where the table and grids go.")
    storage: StorageSpec = StorageSpec()
    mlflow: MlflowSpec = MlflowSpec(experiment="weft-quality")

    @field_validator("test", "heldout", "reference", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _judged(self) -> QualitySpec:
        if self.diffusion and not (self.judge or self.clip):
            raise ValueError("diffusion: its drawings are judged by a CLIP: give judge or clip")
        if not (self.clip or self.captioner or self.diffusion or self.vit_epochs):
            raise ValueError("name at least one of clip, captioner, diffusion and vit_epochs")
        return self
