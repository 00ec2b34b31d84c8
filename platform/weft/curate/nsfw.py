"""NSFW filtering with NudeNet's detector; its ONNX model (`320n.onnx`) ships in the wheel."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import nudenet
import numpy as np
import onnxruntime
import pyarrow as pa
from PIL import Image

from weft.curate.schema import REMOVED, Decision, decide, kept_values, with_columns
from weft.specs import NsfwSpec

STAGE = "nsfw"
MODEL = Path(nudenet.__file__).parent / "320n.onnx"


def verdict(detections: list[dict[str, Any]], spec: NsfwSpec) -> tuple[bool, float, list[str]]:
    """(unsafe, nsfw_score, labels found) from NudeNet detections.

    The score is the highest detection score among the unsafe labels (0 if none); the row is
    unsafe when it reaches the threshold. Labels are every class detected, sorted.
    """
    unsafe = set(spec.unsafe_labels)
    score = max((float(d["score"]) for d in detections if d["class"] in unsafe), default=0.0)
    return score >= spec.threshold, score, sorted({str(d["class"]) for d in detections})


def load_detector() -> nudenet.NudeDetector:
    """NudeNet's detector on one ONNX thread, so several actors share the cores fairly."""
    detector = nudenet.NudeDetector()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    detector.onnx_session = onnxruntime.InferenceSession(
        str(MODEL), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return detector


def bgr(data: bytes) -> np.ndarray:
    """Decoded pixels in OpenCV's BGR order, as NudeNet expects from `cv2.imread`."""
    return np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1])


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
