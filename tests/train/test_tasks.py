"""Task objects outside Ray: what diffusion evaluation measures with a CLIP judge, where a
judge loads from (a folder or the registry), and the errors a wrong judge gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch
from PIL import Image

from weft.inspection import PROMPTS
from weft.models import registry
from weft.models.clip import CLIP
from weft.models.tokenizer import Tokenizer
from weft.registry.pyfunc import log_model
from weft.specs import SpecError, parse_spec
from weft.train.spec import TrainSpec
from weft.train.tasks import TASKS, DiffusionTask, load_judge

CAPTIONS = ["a red circle", "a blue square", "a green triangle", "a small red cross"] * 4


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def diffusion_spec(clip: str | None) -> TrainSpec:
    body: dict[str, Any] = {
        "name": "t",
        "model": "diffusion-tiny",
        "data": {"uri": "unused"},
        "eval": {"cfg_scales": [1.0, 4.0], "sample_steps": 2, "samples": 4, "clip": clip},
    }
    return parse_spec(TrainSpec, body)


def held_out(tokenizer: Tokenizer, size: int, length: int) -> list[dict[str, torch.Tensor]]:
    ids = tokenizer.encode(CAPTIONS, length)
    images = torch.rand(len(CAPTIONS), 3, size, size) * 2 - 1
    return [{"image": images[:8], "ids": ids[:8]}, {"image": images[8:], "ids": ids[8:]}]


def test_diffusion_evaluation_scores_samples_per_guidance_scale_with_the_clip_judge(
    tmp_path: Path,
) -> None:
    clip_tokenizer = Tokenizer.train(CAPTIONS, vocab_size=300)
    registry.save(registry.build("clip-tiny"), tmp_path / "clip", clip_tokenizer)
    tokenizer = Tokenizer.train(CAPTIONS, vocab_size=280)  # the diffusion model's own
    model = registry.build("diffusion-tiny").eval()
    task = DiffusionTask(model, tokenizer, diffusion_spec(str(tmp_path / "clip")))
    config = registry.config("diffusion-tiny")[1]
    batches = held_out(tokenizer, registry.image_size(config), config.text.context_length)  # type: ignore[attr-defined]

    metrics, images = task.evaluate(model, batches)

    assert set(images) == {"samples_cfg1.png", "samples_cfg4.png"}
    for name in ("real", "cfg1", "cfg4"):
        assert 0 <= metrics[f"val/clip_score_{name}"] <= 100
    for name in ("cfg1", "cfg4"):
        assert metrics[f"val/frechet_{name}"] > 0
    assert metrics["val/frechet_cfg1"] != metrics["val/frechet_cfg4"]


def test_diffusion_evaluation_without_a_judge_logs_no_clip_metrics() -> None:
    tokenizer = Tokenizer.train(CAPTIONS, vocab_size=280)
    model = registry.build("diffusion-tiny").eval()
    task = DiffusionTask(model, tokenizer, diffusion_spec(None))
    config = registry.config("diffusion-tiny")[1]
    batches = held_out(tokenizer, registry.image_size(config), config.text.context_length)  # type: ignore[attr-defined]

    metrics, _ = task.evaluate(model, batches)

    assert not [k for k in metrics if "clip_score" in k or "frechet" in k]


def test_a_judge_that_is_not_a_clip_is_refused_naming_the_field(tmp_path: Path) -> None:
    registry.save(
        registry.build("captioner-tiny"), tmp_path / "cap", Tokenizer.train(CAPTIONS, 280)
    )
    with pytest.raises(SpecError, match=r"eval\.clip"):
        load_judge(str(tmp_path / "cap"), diffusion_spec(None).storage)


def test_a_missing_judge_is_an_error_naming_the_field_and_its_uri(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"eval\.clip: .*nowhere"):
        load_judge(str(tmp_path / "nowhere"), diffusion_spec(None).storage)


def test_a_judge_loads_from_the_registry_by_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    torch.manual_seed(0)
    folder = registry.save(
        registry.build("clip-tiny"), tmp_path / "clip", Tokenizer.train(CAPTIONS, 280)
    )
    with mlflow.start_run() as run:
        log_model(folder, "judge")
    model_id = mlflow.get_run(run.info.run_id).outputs.model_outputs[-1].model_id
    version = mlflow.register_model(f"models:/{model_id}", "judge")
    mlflow.MlflowClient().set_registered_model_alias("judge", "champion", version.version)

    judge, tokenizer = load_judge("models:/judge@champion", diffusion_spec(None).storage)

    saved, _ = registry.load(folder)
    assert isinstance(judge, CLIP) and tokenizer.vocab_size == 280
    for name, weight in saved.state_dict().items():
        assert torch.equal(judge.state_dict()[name], weight)


def gold_set(folder: Path) -> Path:
    """A gold set of two images: one with a scratch, one normal."""
    (folder / "images").mkdir(parents=True)
    items = []
    for n, kind in enumerate(("scratch", None)):
        Image.new("RGB", (128, 128), (200, 60, 60)).save(folder / f"images/{n}.png")
        box, where = ((10, 10, 30, 12), "top left") if kind else (None, None)
        items.append(
            {
                "image": f"images/{n}.png",
                "source": f"file:///{n}.png",
                "labelled": False,
                "kind": kind,
                "box": box,
                "where": where,
                "problem": f"a {kind} at the {where}" if kind else "no defect",
                "held_out": False,
            }
        )
    gold = {"about": "two images", "split": "val", "items": items}
    (folder / "inspection_labels.json").write_text(json.dumps(gold))
    return folder


def test_the_inspector_learns_answers_only_and_exports_its_calibrated_thresholds(
    tmp_path: Path,
) -> None:
    texts = [f"{p} {a}" for p in PROMPTS["neutral"][:1] + PROMPTS["leading"][:1]
             for a in ("no defect", "scratch at top left")]  # fmt: skip
    tokenizer = Tokenizer.train(texts * 4, vocab_size=300)
    body = {
        "name": "t",
        "model": {"name": "inspector-tiny", "text": {"context_length": 24}, "answer_length": 8},
        "data": {"uri": "unused"},
        "eval": {"calibration": str(gold_set(tmp_path / "gold")), "target_accuracy": 0.5},
    }
    spec = parse_spec(TrainSpec, body)
    torch.manual_seed(0)
    model = registry.build(spec.model.name, spec.model.overrides)
    task = TASKS["inspector"](model, tokenizer, spec)
    ids = tokenizer.encode(texts, 24)
    images = torch.rand(len(texts), 3, 32, 32) * 2 - 1
    metrics, pictures = task.evaluate(model.eval(), [{"image": images, "ids": ids}])
    assert 0 <= metrics["val/answer_accuracy"] <= 1 and metrics["val/loss"] > 0
    for mode in ("", "crop_"):
        assert 0 <= metrics[f"val/{mode}threshold"] <= 1 + 1e-6
        assert 0 <= metrics[f"val/{mode}answered"] <= 1
    assert pictures["looked.png"].size == (4 * 32, 2 * 32)
    exported = task.exported(registry.build(spec.model.name, spec.model.overrides))
    assert exported.config.threshold == metrics["val/threshold"]  # type: ignore[union-attr]
    assert exported.config.crop_threshold == metrics["val/crop_threshold"]  # type: ignore[union-attr]
