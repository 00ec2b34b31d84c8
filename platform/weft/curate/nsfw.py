"""The curation stage that removes NSFW images, by the shared check (`weft.safety`)."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from weft.curate.schema import REMOVED, Decision, decide, kept_values, with_columns
from weft.safety import bgr, load_detector, verdict
from weft.specs import NsfwSpec

STAGE = "nsfw"


class NsfwFilter:
    """Stage: `nsfw_score` and `nsfw_labels` for kept rows with an image; unsafe rows are
    removed. The detector loads once per actor and sees each distinct image of a batch once
    (an image captioned in several languages is several rows)."""

    name = STAGE
    actors: ClassVar[int] = 2

    def __init__(self, spec: NsfwSpec) -> None:
        self.spec = spec
        self.detector = load_detector()

    def __call__(self, batch: pa.Table) -> pa.Table:
        scores: list[float | None] = [None] * batch.num_rows
        labels: list[list[str] | None] = [None] * batch.num_rows
        decisions: dict[int, Decision] = {}
        seen: dict[bytes, tuple[bool, float, list[str]]] = {}
        for i, image in kept_values(batch, "image"):
            if image not in seen:
                seen[image] = verdict(self.detector.detect(bgr(image)), self.spec)
            unsafe, scores[i], labels[i] = seen[image]
            if unsafe:
                found = ", ".join(labels[i] or [])
                decisions[i] = Decision(
                    REMOVED,
                    STAGE,
                    "nsfw",
                    f"score {scores[i]:.2f} >= {self.spec.threshold} ({found})",
                )
        return decide(with_columns(batch, nsfw_score=scores, nsfw_labels=labels), decisions)
