"""The inspection report: the tables of `weft.quality.inspection`'s measures (per kind, whole
vs crops; prompting; seen vs held-out), every answer as JSON lines, and a gallery of the
wrong answers (the image with its gold box, and where the model looked), logged to MLflow."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import mlflow
from PIL import Image, ImageDraw, ImageFont

from weft.inspection import PROMPTS, GoldItem
from weft.models.inference import attention_png
from weft.models.inspector import cell, parsed
from weft.quality.inspection import MEASURES, MODES, Answer, InspectionEval, groups, rate
from weft.tracking import use_experiment

REPORT = "results.md"
COLUMNS = (
    "flagged",
    "right",
    "missed",
    "abstained",
    "confident but wrong",
    "right if forced",
    "looked at it",
)
VIEWS = {"whole": "whole image", "crops": "crops (the whole and 9 zoomed tiles, merged)"}
PANEL = 256  # the side of a gallery image


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _flagged(answers: list[Answer], name: str, group: Callable[[GoldItem], bool]) -> float | None:
    """Any defect said: detection on defect rows, false alarms on normal ones, both on all."""
    measure = {"normal images": "false alarm", "all images": "flagged"}.get(name, "detected")
    return rate(answers, group, measure)


def markdown(result: InspectionEval) -> str:
    """The tables, under a heading that says what was measured."""
    gold, rows = result.gold, groups(result.gold)
    defects = sum(i.kind is not None for i in gold.items)
    neutral, leading = (p[0] for p in PROMPTS.values())
    lines = [
        f"## Inspection: {len(gold.items)} gold images ({defects} with a defect, "
        f"{len(gold.items) - defects} normal) against {result.model}",
        "",
        f"Prompts: neutral “{neutral}”, leading “{leading}”. Abstention thresholds "
        f"(calibrated on the val gold set): whole {result.thresholds['whole']:.2f}, crops "
        f"{result.thresholds['crops']:.2f}. Flagged: a defect image answered with some defect "
        "(detection), or a normal image answered with one (false alarm). Right: the kind at "
        "a place overlapping the defect's box, or `no defect` on a normal image. Looked at it: "
        "the peak of where the answer looked is on the defect's box (within 8 pixels), "
        "whatever the answer. Right if forced: the guess behind each answer, abstentions "
        "included, is right.",
        "",
    ]
    for mode in MODES:
        answers = result.of(mode, "neutral")
        lines += [
            "",
            f"### Per kind, {VIEWS[mode]}, neutral prompt",
            "",
            "| images | n | " + " | ".join(COLUMNS) + " |",
            "|---|---:|" + "---:|" * len(COLUMNS),
        ]
        for name, group in rows.items():
            n = sum(group(i) for i in gold.items)
            cells = [_flagged(answers, name, group)]
            cells += [rate(answers, group, m) for m in COLUMNS[1:]]
            lines.append(f"| {name} | {n} | " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "### Prompting: neutral vs leading (“where is the defect…” of a normal image too)",
        "",
        "| mode | prompt | false alarms (normal) | abstained (normal) | detected (defects) "
        "| right (defects) | right (held-out kinds) | confident but wrong (all) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        for style in ("neutral", "leading"):
            a = result.of(mode, style)
            cells = [
                rate(a, rows["normal images"], "false alarm"),
                rate(a, rows["normal images"], "abstained"),
                rate(a, rows["all defects"], "detected"),
                rate(a, rows["all defects"], "right"),
                rate(a, rows["held-out kinds"], "right"),
                rate(a, rows["all images"], "confident but wrong"),
            ]
            lines.append(f"| {mode} | {style} | " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def gallery(result: InspectionEval, folder: Path) -> list[dict[str, object]]:
    """A panel for each wrong answer under the neutral prompt (whole, then crops): the image
    with its gold box in green and the answered place in red, beside where the model
    looked; written to `folder`/NNN.png and listed."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    wrong = [a for mode in MODES for a in result.of(mode, "neutral") if not a.right]
    for n, answer in enumerate(wrong):
        name = f"{n:03d}.png"
        _panel(result, answer).save(folder / name)
        listed.append(
            {
                "panel": name,
                "image": answer.item.image,
                "mode": answer.mode,
                "gold": answer.item.problem,
                "answer": answer.finding.answer,
                "guess": answer.finding.guess,
                "confidence": round(answer.finding.confidence, 4),
            }
        )
    return listed


def _panel(result: InspectionEval, answer: Answer) -> Image.Image:
    image = Image.open(result.folder / answer.item.image).convert("RGB")
    size = image.size
    looked = Image.open(io.BytesIO(attention_png(image, answer.finding.attention)))
    scale = PANEL / size[0]
    left, right = (im.resize((PANEL, PANEL), Image.Resampling.NEAREST) for im in (image, looked))
    canvas = Image.new("RGB", (2 * PANEL + 8, PANEL + 44), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (PANEL + 8, 0))
    draw = ImageDraw.Draw(canvas)
    if answer.item.box:
        draw.rectangle([c * scale for c in answer.item.box], outline=(0, 170, 0), width=2)
    kind, where = parsed(answer.finding.guess)
    if kind is not None and where is not None:
        draw.rectangle([c * scale for c in cell(where, (0, 0, *size))], outline=(220, 0, 0))
    font = ImageFont.load_default(size=12)
    text = (
        f"gold: {answer.item.problem}   [{answer.mode}]\n"
        f"answer: {answer.finding.answer} ({answer.finding.guess}, "
        f"{answer.finding.confidence:.2f})"
    )
    draw.multiline_text((4, PANEL + 4), text, fill="black", font=font)
    return canvas


def publish(result: InspectionEval, output: Path, experiment: str) -> str:
    """Write the report, every answer and the gallery under `output`, and log them to
    MLflow with every rate as a metric; the MLflow run's id."""
    output.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    (output / REPORT).write_text(table)
    with (output / "answers.jsonl").open("w") as f:
        for a in result.answers:
            row = {
                "image": a.item.image,
                "mode": a.mode,
                "prompt": a.style,
                "gold": a.item.problem,
                "answer": a.finding.answer,
                "guess": a.finding.guess,
                "confidence": a.finding.confidence,
                "right": a.right,
            }
            f.write(json.dumps(row) + "\n")
    failures = gallery(result, output / "failures")
    (output / "failures.json").write_text(json.dumps(failures, indent=1))
    use_experiment(experiment)
    with mlflow.start_run(run_name=f"inspection-{result.model}") as run:
        mlflow.set_tags({"weft.stage": "eval", "weft.eval.inspector": result.model})
        mlflow.log_params({f"threshold_{k}": v for k, v in result.thresholds.items()})
        metrics = {}
        for mode in MODES:
            for style in ("neutral", "leading"):
                answers = result.of(mode, style)
                for name, group in groups(result.gold).items():
                    for measure in MEASURES:
                        value = rate(answers, group, measure)
                        if value is not None:
                            key = f"inspection/{mode}/{style}/{name}/{measure}"
                            metrics[key.replace(" ", "_")] = value
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(output), "inspection")
    return str(run.info.run_id)
