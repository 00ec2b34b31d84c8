"""Named model configs (each kind has a `-tiny` flavor for tests and the demo), and a model
directory: `weft-model.json` (kind, name, config) beside `model.safetensors` and, when the
model reads text, `tokenizer.json`. `save` and `load` are one call each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from safetensors.torch import load_model, save_model
from torch import nn

from weft.models.captioner import Captioner, CaptionerConfig
from weft.models.clip import CLIP, CLIPConfig
from weft.models.convnet import ConvConfig
from weft.models.diffusion import TextToImage, TextToImageConfig
from weft.models.inspector import Inspector, InspectorConfig
from weft.models.text import TextConfig
from weft.models.tokenizer import Tokenizer
from weft.models.unet import UNetConfig
from weft.models.vit import ViTConfig
from weft.specs import FieldError

MODEL_FILE = "weft-model.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class Kind:
    config: type[BaseModel]
    build: Callable[[Any], nn.Module]


KINDS: dict[str, Kind] = {
    "clip": Kind(CLIPConfig, CLIP),
    "captioner": Kind(CaptionerConfig, Captioner),
    "diffusion": Kind(TextToImageConfig, TextToImage),
    "inspector": Kind(InspectorConfig, Inspector),
}

_TINY_VISION = ViTConfig(image_size=32, patch_size=8, width=32, depth=2, heads=2)
_TINY_TEXT = TextConfig(vocab_size=512, context_length=16, width=32, depth=2, heads=2)
TOWERS = ("vit", "conv")  # the kinds of image tower a CLIP's `vision` may name
_TINY_CONV = ConvConfig(image_size=32, width=32, stages=3)
_SMALL_VISION = ViTConfig(image_size=64, patch_size=8, width=256, depth=6, heads=8)
_SMALL_TEXT = TextConfig(vocab_size=8192, context_length=32, width=256, depth=4, heads=8)

NAMED: dict[str, tuple[str, BaseModel]] = {
    "clip-tiny": ("clip", CLIPConfig(vision=_TINY_VISION, text=_TINY_TEXT, embed_dim=32)),
    "clip-small": ("clip", CLIPConfig(vision=_SMALL_VISION, text=_SMALL_TEXT, embed_dim=256)),
    "clip-conv-tiny": ("clip", CLIPConfig(vision=_TINY_CONV, text=_TINY_TEXT, embed_dim=32)),
    "captioner-tiny": (
        "captioner",
        CaptionerConfig(vision=_TINY_VISION, text=_TINY_TEXT.model_copy(update={"causal": True})),
    ),
    "captioner-small": ("captioner", CaptionerConfig(vision=_SMALL_VISION, text=_SMALL_TEXT)),
    "inspector-tiny": (
        "inspector",
        InspectorConfig(
            vision=_TINY_VISION, text=_TINY_TEXT.model_copy(update={"context_length": 24})
        ),
    ),
    "inspector-small": (
        "inspector",
        InspectorConfig(
            vision=ViTConfig(image_size=64, patch_size=8, width=128, depth=4, heads=4),
            text=TextConfig(vocab_size=1024, context_length=24, width=128, depth=3, heads=4),
        ),
    ),
    "diffusion-tiny": (
        "diffusion",
        TextToImageConfig(
            text=_TINY_TEXT,
            unet=UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2), heads=2),
        ),
    ),
    "diffusion-small": (
        "diffusion",
        TextToImageConfig(
            text=_SMALL_TEXT,
            unet=UNetConfig(image_size=32, base_channels=64, channel_mults=(1, 2, 2), heads=4),
        ),
    ),
}


def config(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[str, BaseModel]:
    """(kind, config) of a named model, with `overrides` of its fields (nested ones as
    dicts) checked against the config. An unknown name lists the known ones (KeyError); a
    bad override is a `FieldError` (a ValueError) that names its field."""
    if name not in NAMED:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(NAMED))}")
    kind, cfg = NAMED[name]
    if not overrides:
        return kind, cfg
    try:
        return kind, type(cfg).model_validate(_merged(cfg.model_dump(), overrides))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = first["loc"]  # a tagged union's tag follows its field: vision.conv.width
        field = ".".join(
            str(part)
            for i, part in enumerate(loc)
            if not (i and loc[i - 1] == "vision" and part in TOWERS)
        )
        raise FieldError(field, f"{first['msg']} (a field of {name})") from None


def _merged(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` laid over `base`, nested dicts field by field; a nested override that
    names another `kind` (a convnet for a ViT) replaces the part whole."""
    out = dict(base)
    for key, value in overrides.items():
        nested = isinstance(value, Mapping) and isinstance(base.get(key), dict)
        if nested and value.get("kind", base[key].get("kind")) != base[key].get("kind"):
            nested = False
        out[key] = _merged(base[key], value) if nested else value
    return out


def image_size(cfg: BaseModel) -> int:
    """The side of the square images a model of config `cfg` takes."""
    if isinstance(cfg, TextToImageConfig):
        return cfg.unet.image_size
    assert isinstance(cfg, CLIPConfig | CaptionerConfig)  # an InspectorConfig is one
    return cfg.vision.image_size


def build(name: str, overrides: Mapping[str, Any] | None = None) -> nn.Module:
    kind, cfg = config(name, overrides)
    return KINDS[kind].build(cfg)


def _kind_of(model: nn.Module) -> str:
    for kind, entry in KINDS.items():
        if type(model) is entry.build:
            return kind
    raise TypeError(f"{type(model).__name__} is not a registered model kind")


def save(model: nn.Module, directory: str | Path, tokenizer: Tokenizer | None = None) -> Path:
    """Write the model's config and weights (and tokenizer) into `directory`."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    cfg: BaseModel = model.config  # type: ignore[assignment]
    (path / MODEL_FILE).write_text(
        json.dumps({"kind": _kind_of(model), "config": cfg.model_dump(mode="json")}, indent=2)
    )
    save_model(model, str(path / WEIGHTS_FILE))
    if tokenizer is not None:
        tokenizer.save(path)
    return path


def weights_digest(directory: str | Path) -> str:
    """The first 12 hex digits of the SHA-256 of a saved model's weights: which model it is,
    whatever folder or registry version it was read from."""
    return hashlib.sha256((Path(directory) / WEIGHTS_FILE).read_bytes()).hexdigest()[:12]


def load_kind(directory: str | Path) -> str:
    """The kind of the model saved in `directory`, without loading it."""
    path = Path(directory) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a Weft model directory (no {MODEL_FILE})")
    return str(json.loads(path.read_text())["kind"])


def load(directory: str | Path) -> tuple[nn.Module, Tokenizer | None]:
    """The model saved in `directory` (in eval mode), and its tokenizer if one was saved."""
    path = Path(directory)
    kind = KINDS[load_kind(path)]
    meta = json.loads((path / MODEL_FILE).read_text())
    model = kind.build(kind.config.model_validate(meta["config"]))
    load_model(model, str(path / WEIGHTS_FILE))
    tokenizer = Tokenizer.load(path) if (path / "tokenizer.json").is_file() else None
    return model.eval(), tokenizer
