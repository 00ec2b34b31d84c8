"""The shared NSFW check: the decision rule on detector outputs."""

from __future__ import annotations

from weft.safety import verdict
from weft.specs import NsfwSpec

SPEC = NsfwSpec(threshold=0.5)


def det(label: str, score: float) -> dict[str, object]:
    return {"class": label, "score": score, "box": [0, 0, 10, 10]}


def test_unsafe_label_at_the_threshold_is_unsafe() -> None:
    assert verdict([det("FEMALE_BREAST_EXPOSED", 0.5)], SPEC) == (
        True,
        0.5,
        ["FEMALE_BREAST_EXPOSED"],
    )


def test_unsafe_label_under_the_threshold_is_safe_but_scored() -> None:
    unsafe, score, labels = verdict([det("BUTTOCKS_EXPOSED", 0.3), det("FACE_MALE", 0.9)], SPEC)
    assert (unsafe, round(score, 2), labels) == (False, 0.3, ["BUTTOCKS_EXPOSED", "FACE_MALE"])


def test_covered_and_face_labels_never_count_and_the_label_list_is_configurable() -> None:
    found = [det("FEMALE_BREAST_COVERED", 0.99), det("FACE_FEMALE", 0.99)]
    assert verdict(found, SPEC)[:2] == (False, 0.0)
    strict = NsfwSpec(unsafe_labels=["FEMALE_BREAST_COVERED"], threshold=0.9)
    assert verdict(found, strict)[0] is True
    assert verdict([], SPEC) == (False, 0.0, [])
