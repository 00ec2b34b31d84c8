"""Task objects outside Ray: what diffusion evaluation measures with a CLIP judge, and the
error a judge that is not a CLIP gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from weft import storage
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.specs import SpecError, TrainSpec, parse_spec
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


def test_a_missing_judge_is_an_error_naming_its_uri(tmp_path: Path) -> None:
    with pytest.raises(storage.StorageError, match="nowhere"):
        load_judge(str(tmp_path / "nowhere"), diffusion_spec(None).storage)
