"""`weft eval inspection`: the inspector on a gold set (`weft data inspection`), every image
asked with a neutral prompt and a leading one, inspected whole and by crops.

Every answer is one of: right (the defect's kind, at a place whose grid cell overlaps its
box; `no defect` on a normal image), wrong, or an abstention (`uncertain`). The measures,
per defect kind and over groups of images:
- flagged: answered with some defect;
- detected: a defect image answered with some defect (any kind, any place);
- right: answered with the right kind at the right place;
- missed: a defect image answered `no defect`;
- false alarm: a normal image answered with a defect (the hallucination rate);
- abstained: answered `uncertain`;
- confident but wrong: answered, not abstained, and wrong;
- right if forced: the guess behind the answer (an abstention's too) is right;
- looked at it: on a defect image, where the answer looked most (the attention map's peak)
  is on the defect's box, or within `REACH` pixels of it (a patch of the zoomed view is 8).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weft.inspection import PROMPTS, GoldItem, GoldSet
from weft.models.inference import DefectInspector
from weft.models.inspector import UNCERTAIN, Finding, parsed

MODES = {"whole": False, "crops": True}
REACH = 8


@dataclass(frozen=True)
class Answer:
    """One gold image's answer under one mode and prompt style."""

    item: GoldItem
    mode: str
    style: str
    finding: Finding

    @property
    def abstained(self) -> bool:
        return self.finding.answer == UNCERTAIN

    @property
    def says_defect(self) -> bool:
        return not self.abstained and parsed(self.finding.answer)[0] is not None

    @property
    def right(self) -> bool:
        return not self.abstained and self.item.right(self.finding.answer)

    @property
    def looked_at_it(self) -> bool:
        """The attention map's peak is on (or within REACH pixels of) the defect's box."""
        assert self.item.box is not None
        peak = np.unravel_index(
            int(np.argmax(self.finding.attention)), self.finding.attention.shape
        )
        y, x = int(peak[0]), int(peak[1])
        x0, y0, x1, y1 = self.item.box
        return x0 - REACH <= x < x1 + REACH and y0 - REACH <= y < y1 + REACH


# What each measure counts, and over which images (True: defect images; False: normal ones;
# None: all).
MEASURES: dict[str, tuple[bool | None, Callable[[Answer], bool]]] = {
    "flagged": (None, lambda a: a.says_defect),
    "detected": (True, lambda a: a.says_defect),
    "right": (None, lambda a: a.right),
    "missed": (True, lambda a: not a.abstained and not a.says_defect),
    "false alarm": (False, lambda a: a.says_defect),
    "abstained": (None, lambda a: a.abstained),
    "confident but wrong": (None, lambda a: not a.abstained and not a.right),
    "right if forced": (None, lambda a: a.item.right(a.finding.guess)),
    "looked at it": (True, lambda a: a.looked_at_it),
}


def groups(gold: GoldSet) -> dict[str, Callable[[GoldItem], bool]]:
    """The rows of the tables: each kind, then seen kinds, held-out kinds, all defects,
    normal images, and every image."""
    kinds = {k: (lambda i, k=k: i.kind == k) for k in gold.kinds}
    return kinds | {
        "seen kinds": lambda i: i.kind is not None and not i.held_out,
        "held-out kinds": lambda i: i.held_out,
        "all defects": lambda i: i.kind is not None,
        "normal images": lambda i: i.kind is None,
        "all images": lambda i: True,
    }


def rate(answers: list[Answer], group: Callable[[GoldItem], bool], measure: str) -> float | None:
    """The share of a group's images (those the measure counts) the measure holds for; None
    if the measure counts none of them."""
    on, holds = MEASURES[measure]
    counted = [
        a for a in answers if group(a.item) and (on is None or (a.item.kind is not None) == on)
    ]
    return statistics.fmean(holds(a) for a in counted) if counted else None


@dataclass(frozen=True)
class InspectionEval:
    gold: GoldSet
    folder: Path
    model: str
    thresholds: dict[str, float]
    answers: list[Answer]

    def of(self, mode: str, style: str) -> list[Answer]:
        return [a for a in self.answers if a.mode == mode and a.style == style]


def run(gold: GoldSet, folder: Path, inspector: DefectInspector, model: str) -> InspectionEval:
    """Every gold image under each mode and prompt style (each style's first prompt)."""
    data = gold.images(folder)
    answers = [
        Answer(item, mode, style, finding)
        for mode, crops in MODES.items()
        for style, prompts in PROMPTS.items()
        for item, finding in zip(
            gold.items, inspector.inspect(data, prompts[0], crops), strict=True
        )
    ]
    c = inspector.model.config
    thresholds = {"whole": c.threshold, "crops": c.crop_threshold}
    return InspectionEval(gold, folder, model, thresholds, answers)
