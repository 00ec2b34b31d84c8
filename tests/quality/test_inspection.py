"""The inspection measures and report, on answers set by hand: what each rate counts, the
tables, the gallery of wrong answers and the MLflow run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from weft.inspection import GoldItem, GoldSet
from weft.models.inspector import UNCERTAIN, Finding
from weft.quality.inspection import Answer, InspectionEval, groups, rate
from weft.quality.inspection_report import markdown, publish


def item(n: int, kind: str | None, box: tuple[int, int, int, int] | None = None) -> GoldItem:
    where = {None: None, (4, 4, 10, 10): "top left", (60, 60, 66, 66): "middle"}[box]
    return GoldItem(
        image=f"images/{n}.png",
        source=f"file:///{n}.png",
        labelled=False,
        kind=kind,
        box=box,
        where=where,
        problem=f"a {kind} at the {where}" if kind else "no defect",
        held_out=kind == "crack",
    )


def found(answer: str, confidence: float = 0.9, guess: str | None = None) -> Finding:
    return Finding(answer, guess or answer, confidence, np.zeros((128, 128), np.float32))


GOLD = GoldSet(
    about="made by hand",
    split="test",
    items=[
        item(0, "scratch", (4, 4, 10, 10)),
        item(1, "scratch", (60, 60, 66, 66)),
        item(2, "crack", (4, 4, 10, 10)),
        item(3, None),
        item(4, None),
    ],
)
ANSWERS = [
    found("scratch at top left"),  # right
    found("stain at middle"),  # detected, wrong kind: confident but wrong
    found(UNCERTAIN, 0.2, guess="scratch at top left"),  # abstained
    found("speck at bottom"),  # false alarm
    found("no defect"),  # right
]


def evaluated(tmp_path: Path) -> InspectionEval:
    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    for i in GOLD.items:
        Image.new("RGB", (128, 128), "white").save(tmp_path / i.image)
    answers = [
        Answer(i, mode, style, f)
        for mode in ("whole", "crops")
        for style in ("neutral", "leading")
        for i, f in zip(GOLD.items, ANSWERS, strict=True)
    ]
    return InspectionEval(
        GOLD, tmp_path, "inspector@champion", {"whole": 0.5, "crops": 0.6}, answers
    )


def test_each_rate_counts_the_images_it_is_about(tmp_path: Path) -> None:
    answers = evaluated(tmp_path).of("whole", "neutral")
    g = groups(GOLD)
    assert rate(answers, g["all defects"], "detected") == pytest.approx(2 / 3)
    assert rate(answers, g["all defects"], "right") == pytest.approx(1 / 3)
    assert rate(answers, g["all defects"], "missed") == 0
    assert rate(answers, g["held-out kinds"], "abstained") == 1
    assert rate(answers, g["normal images"], "false alarm") == 0.5
    assert rate(answers, g["normal images"], "detected") is None  # not about normal images
    assert rate(answers, g["all images"], "confident but wrong") == pytest.approx(2 / 5)
    assert rate(answers, g["scratch"], "confident but wrong") == 0.5
    # every map here peaks at pixel (0, 0): on the boxes at the top left, not the middle one
    assert rate(answers, g["all defects"], "looked at it") == pytest.approx(2 / 3)
    assert rate(answers, g["normal images"], "looked at it") is None


def test_the_report_tables_name_every_kind_and_both_prompts(tmp_path: Path) -> None:
    table = markdown(evaluated(tmp_path))
    assert "5 gold images (3 with a defect, 2 normal) against inspector@champion" in table
    assert "whole 0.50, crops 0.60" in table
    for kind in GOLD.kinds:
        assert f"| {kind} |" in table
    assert "### Per kind, whole image, neutral prompt" in table
    assert "| scratch | 2 | 100% | 50% | 0% | 0% | 50% | 50% | 50% |" in table
    assert "| normal images | 2 | 50% | 50% | — | 0% | 50% |" in table
    assert "| whole | leading | 50% | 0% | 67% | 33% | 0% | 40% |" in table


def test_publishing_writes_the_gallery_of_wrong_answers_and_logs_every_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    result = evaluated(tmp_path / "gold")
    run_id = publish(result, tmp_path / "out", "weft-inspection-test")
    panels = sorted((tmp_path / "out" / "failures").glob("*.png"))
    assert len(panels) == 6  # 3 wrong answers under the neutral prompt, whole and crops
    assert Image.open(panels[0]).size == (2 * 256 + 8, 256 + 44)
    assert (tmp_path / "out" / "answers.jsonl").read_text().count("\n") == 20
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    metrics = mlflow.get_run(run_id).data.metrics
    assert metrics["inspection/whole/neutral/normal_images/false_alarm"] == 0.5
    assert metrics["inspection/crops/leading/all_defects/detected"] == pytest.approx(2 / 3)
