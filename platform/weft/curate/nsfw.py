"""The curation stage that removes NSFW images, by the shared check (`weft.safety`)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from weft.curate.schema import KEPT, REMOVED, Decision, decide, drop_images, with_columns
from weft.safety import bgr, load_detector, verdict
from weft.specs import NsfwSpec

STAGE = "nsfw"


class NsfwFilter:
    """Stage: `nsfw_score` and `nsfw_labels` for rows with an image; unsafe kept rows are
    removed. A row removed earlier that keeps its image for a thumbnail (a duplicate) is
    checked too, and loses it if unsafe: every image that leaves curation passed the check.
    The detector loads once per actor and sees each distinct image of a batch once (an image
    captioned in several languages is several rows)."""

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
        status = batch["status"].to_pylist()
        unsafe_images = np.zeros(batch.num_rows, dtype=bool)
        for i, image in enumerate(batch["image"].to_pylist()):
            if image is None:
                continue
            if image not in seen:
                seen[image] = verdict(self.detector.detect(bgr(image)), self.spec)
            unsafe, scores[i], labels[i] = seen[image]
            unsafe_images[i] = unsafe
            if unsafe and status[i] == KEPT:
                found = ", ".join(labels[i] or [])
                decisions[i] = Decision(
                    REMOVED,
                    STAGE,
                    "nsfw",
                    f"score {scores[i]:.2f} >= {self.spec.threshold} ({found})",
                )
        batch = with_columns(batch, nsfw_score=scores, nsfw_labels=labels)
        return decide(drop_images(batch, unsafe_images), decisions)
