"""Vision Transformer: patch embedding, learnable positions, a CLS token, pre-norm blocks.

`ViT` is the image encoder CLIP, the captioner and the Fréchet-distance metric share;
`ViTClassifier` puts a linear head on its CLS token (the Fashion-MNIST check).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import Tensor, nn

from weft.models.layers import Block, recorded_weights


class ViTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vit"] = "vit"
    image_size: int = 32
    patch_size: int = 4
    channels: int = 3
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0

    @model_validator(mode="after")
    def _patches_fit(self) -> ViTConfig:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        return self

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class ViT(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.patch = nn.Conv2d(c.channels, c.width, c.patch_size, stride=c.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, c.width))
        self.position = nn.Parameter(torch.randn(1, c.patches + 1, c.width) * 0.02)
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.width)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] → tokens (B, 1 + patches, width); token 0 is CLS."""
        x = self.patch(images).flatten(2).transpose(1, 2)  # (B, N, D)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.position
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pooled(self, images: Tensor) -> Tensor:
        """(B, C, H, W) → (B, width): the CLS token's features."""
        return self(images)[:, 0]

    @torch.no_grad()
    def attention_maps(self, images: Tensor) -> Tensor:
        """(depth, B, heads, 1 + patches, 1 + patches): every block's attention weights.
        Row 0 of a map is where CLS looks; reshape its patch columns to the patch grid."""
        attentions = [block.attn for block in self.blocks if isinstance(block, Block)]
        return recorded_weights(attentions, lambda: self(images))


class ViTClassifier(nn.Module):
    """A ViT with a linear head on its CLS token."""

    def __init__(self, config: ViTConfig, classes: int) -> None:
        super().__init__()
        self.vit = ViT(config)
        self.head = nn.Linear(config.width, classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.vit(images)[:, 0])  # (B, classes)
