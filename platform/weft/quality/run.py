"""`weft eval`: measure the models a spec names on a curated corpus's held-out data, and write
the table where people look: `<output>/<name>/results.md` and an MLflow run with every figure."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import mlflow
from PIL import Image

from weft import storage
from weft.models import inference, registry
from weft.models.images import captioned_grid, png_bytes
from weft.models.inference import Predictor
from weft.quality import fashion, figures, sets, transfer
from weft.quality.figures import Figure
from weft.quality.spec import QualitySpec
from weft.quality.table import markdown
from weft.registry.artifacts import fetch_predictor
from weft.tracking import use_experiment

RESULTS = "results.md"
P = TypeVar("P", bound=Predictor)


@dataclass(frozen=True)
class Evaluation:
    figures: list[Figure]
    table: str  # markdown
    output: str  # the folder holding results.md and figures.json
    run_id: str | None


def evaluate(spec: QualitySpec) -> Evaluation:
    """Each model of the spec measured, the table written and logged."""
    folders = {"test": spec.test} | ({"heldout": spec.heldout} if spec.clip else {})
    if spec.diffusion and spec.reference:
        folders["reference"] = spec.reference
    splits = sets.read_splits(spec.data, folders, spec.storage)
    test = splits["test"]
    found: list[Figure] = []
    grids: dict[str, Image.Image] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if spec.clip:
            clip = _load(spec, "clip", Path(tmp), inference.Embedder)
            found += figures.zero_shot(clip, splits["heldout"], spec.zero_shot)
            found += figures.text_to_image(clip, test, spec.recall_at)
            if spec.transfer:
                found += transfer.zero_shot(clip, spec.transfer, spec.seed)
        if spec.captioner:
            writer = _load(spec, "captioner", Path(tmp), inference.CaptionWriter)
            scores, captions = figures.captioning(writer, test)
            found += scores
            shown = sets.images_once(test)[: spec.samples]
            grids["captions.png"] = captioned_grid(
                [r.image for r in shown],
                [f"{c} | named: {r.english_name}" for r, c in zip(shown, captions, strict=False)],
            )
        if spec.diffusion:
            generator = _load(spec, "diffusion", Path(tmp), inference.ImageGenerator)
            judge = _judge(spec, Path(tmp))
            scores, prompts, drawn = figures.generation(
                generator,
                judge,
                test,
                spec.cfg_scales,
                spec.seed,
                splits.get("reference"),
                spec.drawn,
            )
            found += scores
            for scale, pictures in drawn.items():
                grids[f"generated_cfg{scale:g}.png"] = captioned_grid(
                    pictures[: spec.samples], prompts[: spec.samples]
                )
    if spec.vit_epochs:
        found.append(fashion.classifier_accuracy(spec.vit_epochs, spec.seed))
    table = markdown(found, f"Weft quality: {spec.name}", spec.tried)
    output = _write(spec, found, table, grids)
    return Evaluation(found, table, output.uri, _log(spec, found, table, grids))


def _load(spec: QualitySpec, field: str, tmp: Path, kind: type[P]) -> P:
    return fetch_predictor(getattr(spec, field), field, spec.storage, tmp, kind)[0]


def _judge(spec: QualitySpec, tmp: Path) -> figures.Judge:
    """The spec's fixed judge, else its CLIP, with the hash of its weights as its version."""
    field = "judge" if spec.judge else "clip"
    embedder, directory, _ = fetch_predictor(
        getattr(spec, field), field, spec.storage, tmp / "judge", inference.Embedder
    )
    return figures.Judge(embedder, registry.weights_digest(directory))


def _write(
    spec: QualitySpec, found: list[Figure], table: str, grids: dict[str, Image.Image]
) -> storage.Location:
    out = storage.resolve(spec.output, spec.storage).join(spec.name)
    storage.write_bytes(out.join(RESULTS), table.encode())
    for name, grid in grids.items():
        storage.write_bytes(out.join(name), png_bytes(grid))
    body = json.dumps([asdict(f) | {"met": f.met} for f in found], indent=1, ensure_ascii=False)
    storage.write_bytes(out.join("figures.json"), body.encode())
    return out


def _log(
    spec: QualitySpec, found: list[Figure], table: str, grids: dict[str, Image.Image]
) -> str | None:
    if not spec.mlflow.enabled:
        return None
    models = {f: getattr(spec, f) for f in ("clip", "captioner", "diffusion") if getattr(spec, f)}
    with mlflow.start_run(
        experiment_id=use_experiment(spec.mlflow.experiment), run_name=spec.name
    ) as run:
        mlflow.set_tags({"weft.stage": "eval", **{f"weft.eval.{f}": u for f, u in models.items()}})
        mlflow.log_params(
            {"data": spec.data, "test": ", ".join(spec.test), "heldout": ", ".join(spec.heldout)}
        )
        mlflow.log_metrics({f.key: f.value for f in found})
        mlflow.log_text(table, RESULTS)
        for name, grid in grids.items():
            mlflow.log_image(grid, f"samples/{name}")
        return str(run.info.run_id)
