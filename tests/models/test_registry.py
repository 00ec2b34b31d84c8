"""Named models build, and every kind saves to and loads from a directory in one call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from weft.models import registry
from weft.models.tokenizer import Tokenizer


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
