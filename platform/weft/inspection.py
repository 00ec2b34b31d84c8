"""What an inspection gold set is: the defect kinds (those held out of training too), the
prompts, and `inspection_labels.json` (`GoldSet`): each image's problem in words, its kind,
box and place, or "no defect"; and when an answer to it is right. `weft data inspection`
writes the sets; training calibrates on one and `weft eval inspection` scores on one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from weft.models.inspector import NO_DEFECT, PLACES, Box, cell, parsed, place
from weft.specs import SpecError, parse_spec

KINDS = (
    "scratch",
    "crack",
    "stain",
    "missing part",
    "wrong colour",
    "torn label",
    "misprinted label",
    "speck",
)
# Kinds that appear in no training image: what the model makes of an issue it never saw.
HELD_OUT = ("crack", "torn label")
LABEL_KINDS = ("torn label", "misprinted label")  # only on a product that carries a label
SEEN = tuple(k for k in KINDS if k not in HELD_OUT)
SIZE = 128  # the side of an inspected image
PROMPTS = {
    "neutral": (
        "is anything wrong with this product?",
        "does this item pass inspection?",
        "do you see any problem with this object?",
        "is this product free of defects?",
    ),
    "leading": (
        "where is the defect on this product?",
        "what is damaged on this item, and where?",
        "which flaw does this object have?",
        "what is broken here?",
    ),
}
LABELS_FILE = "inspection_labels.json"


class GoldItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(pattern=r"^images/[\w-]+\.png$", description="Relative to the set.")
    source: str = Field(description="The drawing it was made from (a file URI).")
    labelled: bool = Field(description="The product carries a printed label.")
    kind: str | None = Field(description="The defect's kind; null: no defect.")
    box: Box | None = Field(description="x0, y0, x1, y1 of the changed pixels (x1, y1 past).")
    where: str | None = Field(description="The grid cell of the box's centre, in words.")
    problem: str = Field(description='The problem in words, or "no defect".')
    held_out: bool = Field(description="The kind appears in no training image.")

    @model_validator(mode="after")
    def _consistent(self) -> GoldItem:
        if (self.kind is None) != (self.box is None) or (self.kind is None) != (self.where is None):
            raise ValueError("kind, box and where are all given (a defect) or all null")
        if self.kind is None:
            if self.problem != NO_DEFECT or self.held_out:
                raise ValueError(f'an image with no defect has problem "{NO_DEFECT}"')
            return self
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: not one of {', '.join(KINDS)}")
        if self.held_out != (self.kind in HELD_OUT):
            raise ValueError(f"held_out: {self.kind} is {'' if self.held_out else 'not '}held out")
        x0, y0, x1, y1 = self.box  # type: ignore[misc]
        if not (0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE):
            raise ValueError(f"box {self.box} is not inside the {SIZE}-pixel image")
        if self.where != place(self.box, (SIZE, SIZE)):  # type: ignore[arg-type]
            raise ValueError(f"where {self.where!r} is not the cell of the box's centre")
        return self

    def right(self, answer: str) -> bool:
        """Whether an answer is right: `no defect` for a normal image; for a defect its kind,
        at a place whose grid cell overlaps the defect's box."""
        kind, where = parsed(answer)
        if self.kind is None or kind != self.kind:
            return kind is None and self.kind is None and answer.strip() == NO_DEFECT
        if where is None or self.box is None:
            return False
        x0, y0, x1, y1 = cell(where, (0, 0, SIZE, SIZE))
        return x0 < self.box[2] and self.box[0] < x1 and y0 < self.box[3] and self.box[1] < y1


class GoldSet(BaseModel):
    """`inspection_labels.json`: a gold set's images and their labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str
    split: Literal["val", "test"]
    size: int = SIZE
    kinds: list[str] = list(KINDS)
    held_out_kinds: list[str] = list(HELD_OUT)
    places: list[str] = [p for row in PLACES for p in row]
    items: list[GoldItem] = Field(min_length=1)

    @classmethod
    def read(cls, folder: str | Path) -> GoldSet:
        """The gold set in `folder`; a SpecError naming the file and field if it is not
        valid, or an image it names that is missing."""
        path = Path(folder) / LABELS_FILE
        if not path.is_file():
            raise SpecError(f"{folder}: no {LABELS_FILE} (weft data inspection writes one)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SpecError(f"{path}: not JSON ({err})") from None
        gold = parse_spec(cls, data, str(path))
        for n, item in enumerate(gold.items):
            if not (Path(folder) / item.image).is_file():
                raise SpecError(f"{path}: items[{n}].image: {item.image} is missing")
        return gold

    def images(self, folder: str | Path) -> list[bytes]:
        """The encoded images, in the order of `items`."""
        return [(Path(folder) / item.image).read_bytes() for item in self.items]
