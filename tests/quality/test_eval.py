"""`weft eval models` end to end on a tiny curated emoji corpus and a tiny CLIP: the table
written beside its figures, every figure in MLflow, and a spec that names a model wrong or
leaves out a class name refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from typer.testing import CliRunner

from weft.cli import app
from weft.data.emoji import key, picture
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.quality import figures as quality_figures
from weft.tracking import tracking_uri

# (emoji, subgroup, English caption, German caption)
TEST = [
    ("😀", "grinning face", "Grinsendes Gesicht"),
    ("🚗", "automobile", "Auto"),
    ("🐶", "dog face", "Hundegesicht"),
    ("👋🏽", "waving hand: medium skin tone", "winkende Hand: mittlere Hautfarbe"),
    ("👋", "waving hand", "winkende Hand"),
]
HELDOUT = [
    ("🐦", "bird", "Vogel"),
    ("🦅", "eagle", "Adler"),
    ("🌸", "cherry blossom", "Kirschblüte"),
]


def _curated(root: Path) -> Path:
    """A curation output's data/ holding both splits' pairs, as `weft curate` writes them."""
    rows: list[dict[str, Any]] = []
    for split, items in (("test", TEST), ("heldout", HELDOUT)):
        for chars, english, german in items:
            png = picture(chars, 32)
            for language, text in (("en", english), ("de", german)):
                rows.append(
                    {
                        "key": key(chars, language),
                        "text": text,
                        "lang": language,
                        "image": png,
                        "image_hash": chars,
                        "source_uri": str(root / "raw" / split / "shard-00000.tar"),
                    }
                )
    (root / "curated" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "curated" / "data" / "part-0.parquet")
    return root / "curated"


def _model(name: str, folder: Path) -> str:
    torch.manual_seed(0)
    captions = [t for _, en, de in TEST + HELDOUT for t in (en, de)]
    return str(registry.save(registry.build(name), folder, Tokenizer.train(captions, 300)))


def _spec(root: Path, **changes: Any) -> Path:
    body = {
        "name": "tiny-quality",
        "data": str(_curated(root)),
        "test": str(root / "raw" / "test"),
        "heldout": str(root / "raw" / "heldout"),
        "clip": _model("clip-tiny", root / "clip"),
        "captioner": _model("captioner-tiny", root / "captioner"),
        "diffusion": _model("diffusion-tiny", root / "diffusion"),
        "cfg_scales": [0.0, 3.0],
        "recall_at": 5,
        "zero_shot": {
            "templates": {"en": "{}", "de": "{}"},
            "classes": {
                "bird": {"groups": ["animal-bird"], "names": {"en": "bird", "de": "Vogel"}},
                "flower": {"groups": ["plant-flower"], "names": {"en": "flower", "de": "Blume"}},
            },
        },
        "output": str(root / "quality"),
    } | changes
    path = root / "quality.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


def test_eval_writes_the_table_and_logs_every_figure_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        quality_figures, "MIN_PER_LANGUAGE", 5
    )  # the split has 5 captions a language
    result = CliRunner().invoke(app, ["eval", "models", str(_spec(tmp_path))])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "quality" / "tiny-quality" / "figures.json").read_text())
    by_on = {(f["measure"], f["on"]): f for f in figures}
    # five images (two of one base), every caption's own base among the top 5: all found
    recall = by_on[("text→image recall@5", "test")]
    assert recall["value"] == 1.0 and recall["count"] == 10 and recall["met"] is True
    assert by_on[("text→image recall@5", "test, de captions")]["count"] == 5
    zero_shot = by_on[("zero-shot top-1", "held-out classes, de prompts")]
    assert zero_shot["count"] == 3 and 0 <= zero_shot["value"] <= 1
    assert by_on[("zero-shot top-5", "held-out classes, en prompts")]["value"] == 1.0  # 2 classes
    table = (tmp_path / "quality" / "tiny-quality" / "results.md").read_text()
    assert "| clip | text→image recall@5 | test | 100.0% | 100.0% | 10 | > 50.0% | yes |" in table
    mlflow.set_tracking_uri(tracking_uri())
    run = mlflow.search_runs(experiment_names=["weft-quality"], output_format="list")[0]
    assert run.data.metrics["clip/text_to_image_recall_at_5/test"] == 1.0
    assert len(run.data.metrics) == len(figures)
    assert run.data.tags["weft.eval.clip"] == str(tmp_path / "clip")
    captioner = {f["measure"]: f for f in figures if f["model"] == "captioner"}
    assert set(captioner) == {"BLEU-4", "CIDEr-D"} and captioner["BLEU-4"]["count"] == 5
    drawn = [f for f in figures if f["model"] == "diffusion"]
    judged_by = f"judge {registry.weights_digest(tmp_path / 'clip')}"  # no judge: the CLIP
    assert [f["on"] for f in drawn if f["measure"] == "Fréchet distance"] == [
        f"test names, CFG 0, {judged_by}",
        f"test names, CFG 3, {judged_by}",
    ]
    matched = [f for f in drawn if f["measure"] == "own prompt among 10"]
    assert len(matched) == 2 and all(f["chance"] == 0.1 and f["count"] == 5 for f in matched)
    samples = {"captions.png", "generated_cfg0.png", "generated_cfg3.png"}
    assert samples <= {p.name for p in (tmp_path / "quality" / "tiny-quality").iterdir()}
    logged = mlflow.MlflowClient().list_artifacts(run.info.run_id, "samples")
    assert {Path(a.path).name for a in logged} == samples
    monkeypatch.setattr(quality_figures, "MIN_PER_LANGUAGE", 6)
    fewer = CliRunner().invoke(app, ["eval", "models", str(_spec(tmp_path / "fewer"))])
    assert fewer.exit_code == 0, fewer.output
    fewer_table = (tmp_path / "fewer" / "quality" / "tiny-quality" / "results.md").read_text()
    assert "de captions" not in fewer_table and "| test |" in fewer_table


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"clip": "models:/no-such-model@champion"},
            "clip: models:/no-such-model@champion: not found",
        ),
        (
            {
                "zero_shot": {
                    "templates": {"en": "{}", "de": "{}"},
                    "classes": {
                        "sport": {"groups": ["sport"], "names": {"en": "sport"}},
                        "tool": {"groups": ["tool"], "names": {"en": "tool", "de": "Werkzeug"}},
                    },
                }
            },
            "zero_shot: classes.sport: no name in de",
        ),
        ({"test": "/nowhere"}, "/nowhere: no curated image-text pairs"),
    ],
)
def test_a_bad_spec_is_refused_in_one_line_naming_the_field(
    changes: dict[str, Any], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["eval", "models", str(_spec(tmp_path, **changes))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split())


def test_a_model_given_as_an_option_is_measured_alone(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = CliRunner().invoke(
        app, ["eval", "models", str(spec), "--clip", str(tmp_path / "clip")]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "quality" / "tiny-quality" / "figures.json").read_text())
    assert {f["model"] for f in figures} == {"clip"}


def test_a_fixed_judge_scores_the_drawings_beside_the_floor_of_two_real_splits(
    tmp_path: Path,
) -> None:
    judge = _model("clip-conv-tiny", tmp_path / "judge")
    reference = str(tmp_path / "raw" / "heldout")  # another real split
    spec = _spec(tmp_path, judge=judge, reference=reference, clip=None, captioner=None)
    result = CliRunner().invoke(app, ["eval", "models", str(spec)])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "quality" / "tiny-quality" / "figures.json").read_text())
    by = f"judge {registry.weights_digest(judge)}"
    on = {f["on"] for f in figures if f["measure"] == "Fréchet distance"}
    assert on == {
        f"real val vs real test, {by}",
        f"test names, CFG 0, {by}",
        f"test names, CFG 3, {by}",
    }
    assert {f["model"] for f in figures} == {"diffusion"}
