"""The ViT encoder: token shapes, attention maps, and a classifier that learns."""

from __future__ import annotations

import pytest
import torch

from weft.models.vit import ViT, ViTClassifier, ViTConfig

CONFIG = ViTConfig(image_size=16, patch_size=4, channels=3, width=32, depth=2, heads=4)


def test_tokens_are_cls_then_one_per_patch() -> None:
    out = ViT(CONFIG)(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 1 + 16, 32)


def test_attention_maps_are_distributions_over_tokens() -> None:
    vit = ViT(CONFIG).eval()
    images = torch.randn(2, 3, 16, 16)
    maps = vit.attention_maps(images)
    assert maps.shape == (2, 2, 4, 17, 17)  # (depth, B, heads, tokens, tokens)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 4, 17), atol=1e-5)
    assert all(not b.attn.keep_weights and b.attn.weights is None for b in vit.blocks)


def test_patch_size_must_divide_the_image() -> None:
    with pytest.raises(ValueError, match="image_size 30 is not a multiple of patch_size 4"):
        ViTConfig(image_size=30, patch_size=4)


def test_classifier_overfits_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = ViTClassifier(CONFIG, classes=4)
    images, labels = torch.randn(16, 3, 16, 16), torch.arange(16) % 4
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
