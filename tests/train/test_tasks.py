"""Task objects outside Ray: what diffusion evaluation measures with a CLIP judge, where a
judge loads from (a folder or the registry), and the errors a wrong judge gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch

from weft.models import registry
from weft.models.clip import CLIP
from weft.models.tokenizer import Tokenizer
from weft.registry.pyfunc import log_model
from weft.specs import SpecError, parse_spec
from weft.train.spec import TrainSpec
from weft.train.tasks import DiffusionTask, load_judge

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
