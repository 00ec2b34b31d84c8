"""Gold queries, written and judged by hand: each a text with every item a person asking it
would accept (`weft.data.items`: a character stands for every drawing of it, in either
style; `openclipart/<path>` for one drawing), and the half it belongs to: `dev` may be looked
at while tuning, `test` is reported only."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from weft.data.items import gold_item
from weft.specs import _Spec

KINDS = ("short", "descriptive")
HALVES = ("dev", "test")


class GoldQuery(_Spec):
    kind: Literal["short", "descriptive"]
    half: Literal["dev", "test"]
    text: str = Field(min_length=1)
    relevant: list[str] = Field(
        min_length=1, description="Characters and openclipart/<path> items a person accepts."
    )

    @property
    def items(self) -> list[str]:
        """The items of `relevant`, each once, in its order."""
        return list(dict.fromkeys(gold_item(e) for e in self.relevant))


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
