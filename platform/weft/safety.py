"""The NSFW check that curation applies to its images and serving to generated ones:
NudeNet's detector (its ONNX model, `320n.onnx`, ships in the wheel) and the rule that turns
its detections into a verdict under an `NsfwSpec`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import nudenet
import numpy as np
import onnxruntime
from PIL import Image

from weft.specs import NsfwSpec

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
