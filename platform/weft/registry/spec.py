"""A promotion spec (`jobs/promote-*.yaml`): the registered model, the evaluation gate a
version must pass to take the alias, and the aliases to move."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from weft.specs import _Spec


class Bound(_Spec):
    """A held-out metric the gate reads: which way is better, and the worst value allowed."""

    better: Literal["lower", "higher"]
    threshold: float | None = Field(
        default=None, description="The worst value a version may have (None: no threshold)."
    )


class GateSpec(_Spec):
    """A version passes when every metric is logged, within its threshold, and no worse than
    the current champion's by more than `champion_tolerance` (a fraction of the champion's)."""

    metrics: dict[str, Bound] = Field(min_length=1)
    champion_tolerance: float = Field(default=0.0, ge=0)


class PromoteSpec(_Spec):
    model: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="The registered model's name."
    )
    gate: GateSpec
    alias: str = Field(default="champion", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    challenger: str | None = Field(
        default="challenger",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        description="The alias a version that fails the gate takes (None: no alias).",
    )

    @model_validator(mode="after")
    def _two_aliases(self) -> PromoteSpec:
        if self.challenger == self.alias:
            raise ValueError(f"challenger: the same alias as `alias` ({self.alias})")
        return self
