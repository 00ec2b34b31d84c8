"""Gold queries, written by hand: each a text with every emoji a person asking it would accept.
An indexed item is relevant when its emoji, or the base its variants share, is in the list."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from weft.data.emoji import base_of
from weft.specs import _Spec


class GoldQuery(_Spec):
    kind: Literal["short", "descriptive"]
    text: str = Field(min_length=1)
    relevant: list[str] = Field(min_length=1, description="Emoji (characters) a person accepts.")

    @property
    def bases(self) -> set[str]:
        return {base_of(e) for e in self.relevant}


class GoldSet(_Spec):
    queries: list[GoldQuery] = Field(min_length=1)

    @field_validator("queries")
    @classmethod
    def _distinct(cls, queries: list[GoldQuery]) -> list[GoldQuery]:
        texts = [q.text for q in queries]
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ValueError(f"asked twice: {', '.join(repeated)}")
        return queries
