"""CLIP: an image encoder (a ViT or a small convnet) and a text transformer projected into
one normalised embedding space, trained with InfoNCE over in-batch negatives and a learnable
temperature.

The loss gathers every data-parallel worker's embeddings with their gradients, so the
negatives are the global batch; the temperature is clamped as CLIP does (logit scale at
most 100).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from torch import Tensor, nn

from weft.models.convnet import ConvConfig, ConvNet
from weft.models.text import TextConfig, TextTransformer
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViT, ViTConfig


def _vision_kind(value: Any) -> str:
    """A vision config's `kind`; configs saved before there were two kinds are ViTs."""
    kind = value.get("kind", "vit") if isinstance(value, dict) else getattr(value, "kind", "vit")
    return str(kind)


VisionConfig = Annotated[
    Annotated[ViTConfig, Tag("vit")] | Annotated[ConvConfig, Tag("conv")],
    Discriminator(_vision_kind),
]
ImageEncoder = ViT | ConvNet


class CLIPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vision: VisionConfig = ViTConfig()
    text: TextConfig = TextConfig()
    embed_dim: int = 64
    init_temperature: float = Field(default=0.07, gt=0, le=1)
    learn_temperature: bool = Field(default=True, description="False: fixed at the initial.")
    max_logit_scale: float = 100.0


class CLIP(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.visual: ImageEncoder = (
            ViT(config.vision) if isinstance(config.vision, ViTConfig) else ConvNet(config.vision)
        )
        self.text = TextTransformer(config.text)
        self.visual_proj = nn.Linear(config.vision.width, config.embed_dim, bias=False)
        self.text_proj = nn.Linear(config.text.width, config.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1 / config.init_temperature)),
            requires_grad=config.learn_temperature,
        )

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        """(B, C, H, W) → (B, embed_dim), of unit length unless `normalize` is False."""
        out = self.visual_proj(self.visual.pooled(images))
        return F.normalize(out, dim=-1) if normalize else out

    def encode_text(self, ids: Tensor, normalize: bool = True) -> Tensor:
        """(B, L) ids → (B, embed_dim), of unit length unless `normalize` is False."""
        out = self.text_proj(TextTransformer.pool(self.text(ids), ids))
        return F.normalize(out, dim=-1) if normalize else out

    def forward(self, images: Tensor, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Image embeddings, text embeddings and the logit scale (1 / temperature)."""
        scale = self.logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()
        return self.encode_image(images), self.encode_text(ids), scale

    @property
    def temperature(self) -> float:
        return float(1 / self.logit_scale.detach().exp())

    @torch.no_grad()
    def clamp_temperature(self) -> None:
        """Keep the logit scale in [0, ln max_logit_scale]; call after each optimiser step."""
        self.logit_scale.clamp_(0, math.log(self.config.max_logit_scale))


def _gather(x: Tensor) -> tuple[Tensor, int]:
    """Every worker's rows (with gradients flowing back to each) and this worker's offset."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    world = dist.group.WORLD
    assert world is not None
    gathered = funcol.all_gather_single_autograd(x, gather_dim=0, group=world)
    return funcol.wait_tensor(gathered), dist.get_rank() * len(x)


def contrastive_loss(image: Tensor, text: Tensor, scale: Tensor, gather: bool = True) -> Tensor:
    """Symmetric InfoNCE: each image's caption against every caption of the global batch,
    and each caption's image against every image. Local batches must be the same size.
    `gather=False` keeps to the local batch (evaluation on one rank)."""
    all_image, offset = _gather(image) if gather else (image, 0)
    all_text, _ = _gather(text) if gather else (text, 0)
    labels = torch.arange(len(image), device=image.device) + offset
    image_logits = scale * image @ all_text.T  # (B, world * B)
    text_logits = scale * text @ all_image.T
    return (F.cross_entropy(image_logits, labels) + F.cross_entropy(text_logits, labels)) / 2


@torch.no_grad()
def zero_shot_classifier(
    model: CLIP,
    tokenizer: Tokenizer,
    classnames: Sequence[str],
    templates: Sequence[str] = ("a photo of a {}.",),
) -> Tensor:
    """(classes, embed_dim): each class's prompts embedded, averaged, renormalised."""
    length = model.config.text.context_length
    rows = []
    for name in classnames:
        ids = tokenizer.encode([t.format(name) for t in templates], length)
        rows.append(
            F.normalize(model.encode_text(ids.to(model.logit_scale.device)).mean(0), dim=-1)
        )
    return torch.stack(rows)


@torch.no_grad()
def zero_shot_logits(model: CLIP, images: Tensor, classifier: Tensor) -> Tensor:
    """(B, classes) cosine similarities of the images to each class embedding."""
    return model.encode_image(images) @ classifier.T
