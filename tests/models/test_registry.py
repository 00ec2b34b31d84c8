"""Named models build, and every kind saves to and loads from a directory in one call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from weft.models import registry
from weft.models.clip import CLIP, CLIPConfig
from weft.models.convnet import ConvConfig
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViT


@pytest.mark.parametrize("name", sorted(n for n in registry.NAMED if n.endswith("-tiny")))
def test_save_then_load_gives_the_same_config_weights_and_tokenizer(
    name: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = registry.build(name).eval()
    tokenizer = Tokenizer.train(["a red circle", "a blue square"] * 5, vocab_size=280)
    registry.save(model, tmp_path / name, tokenizer)
    loaded, loaded_tokenizer = registry.load(tmp_path / name)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert loaded_tokenizer is not None and loaded_tokenizer.vocab_size == tokenizer.vocab_size
    for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    meta = json.loads((tmp_path / name / registry.MODEL_FILE).read_text())
    assert meta["kind"] == registry.config(name)[0]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="clip-tiny"):
        registry.build("clip-huge")


def test_loading_a_folder_that_is_not_a_model_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        registry.load(tmp_path)


def test_a_loaded_clip_embeds_exactly_as_before(tmp_path: Path) -> None:
    model = registry.build("clip-tiny").eval()
    images, ids = torch.randn(2, 3, 32, 32), torch.randint(3, 500, (2, 16))
    loaded, _ = registry.load(registry.save(model, tmp_path))
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), model.encode_image(images))
        assert torch.equal(loaded.encode_text(ids), model.encode_text(ids))


def test_overrides_change_the_named_config_field_by_field() -> None:
    kind, cfg = registry.config("clip-tiny", {"init_temperature": 0.2, "vision": {"depth": 1}})
    named = registry.config("clip-tiny")[1]
    assert kind == "clip" and isinstance(cfg, CLIPConfig) and isinstance(named, CLIPConfig)
    assert (cfg.init_temperature, cfg.vision.depth) == (0.2, 1)
    assert cfg.vision.width == named.vision.width and named.vision.depth == 2
    with pytest.raises(ValueError, match=r"^init_temperature: Input should be greater than 0"):
        registry.config("clip-tiny", {"init_temperature": 0})


def test_a_fixed_temperature_is_not_learned() -> None:
    fixed = registry.build("clip-tiny", {"init_temperature": 0.1, "learn_temperature": False})
    assert isinstance(fixed, CLIP)
    assert not fixed.logit_scale.requires_grad and fixed.temperature == pytest.approx(0.1)
    assert registry.build("clip-tiny").logit_scale.requires_grad  # type: ignore[union-attr]


def test_an_override_naming_another_image_tower_replaces_it_whole() -> None:
    _, cfg = registry.config("clip-small", {"vision": {"kind": "conv", "width": 48}})
    assert isinstance(cfg, CLIPConfig) and isinstance(cfg.vision, ConvConfig)
    assert (cfg.vision.width, cfg.vision.image_size) == (48, ConvConfig().image_size)
    with pytest.raises(ValueError, match=r"^vision\.patch_size: Extra inputs"):
        registry.config("clip-conv-tiny", {"vision": {"patch_size": 4}})


def test_a_clip_saved_before_image_towers_had_kinds_loads_as_a_vit(tmp_path: Path) -> None:
    path = registry.save(registry.build("clip-tiny"), tmp_path)
    meta = json.loads((path / registry.MODEL_FILE).read_text())
    del meta["config"]["vision"]["kind"]
    (path / registry.MODEL_FILE).write_text(json.dumps(meta))
    loaded, _ = registry.load(path)
    assert isinstance(loaded, CLIP) and isinstance(loaded.visual, ViT)


def test_the_weights_digest_names_the_weights_wherever_they_are_saved(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = registry.build("clip-conv-tiny")
    first = registry.weights_digest(registry.save(model, tmp_path / "a"))
    assert registry.weights_digest(registry.save(model, tmp_path / "b")) == first
    with torch.no_grad():
        model.logit_scale.add_(1)  # type: ignore[operator]
    assert registry.weights_digest(registry.save(model, tmp_path / "c")) != first
    assert len(first) == 12
