"""The convolutional image tower: its grid, its pooled features, and CLIP built on it."""

from __future__ import annotations

import pytest
import torch

from weft.models import registry
from weft.models.clip import CLIP, contrastive_loss
from weft.models.convnet import ConvConfig, ConvNet


def test_each_stage_but_the_last_halves_the_grid_and_pooling_gives_width() -> None:
    net = ConvNet(ConvConfig(image_size=32, width=64, stages=4))
    assert net.config.stage_widths == [16, 32, 64, 64]
    images = torch.randn(2, 3, 32, 32)
    assert net(images).shape == (2, 64, 4, 4)
    assert net.pooled(images).shape == (2, 64)


def test_an_image_size_the_stages_cannot_halve_names_both() -> None:
    with pytest.raises(ValueError, match="image_size 36 does not halve 3 times"):
        ConvConfig(image_size=36, stages=4)


def test_a_clip_on_the_convnet_learns_to_pair_its_batch() -> None:
    torch.manual_seed(0)
    model = registry.build("clip-conv-tiny")
    assert isinstance(model, CLIP) and isinstance(model.visual, ConvNet)
    images, ids = torch.randn(8, 3, 32, 32), torch.randint(3, 500, (8, 16))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = contrastive_loss(*model(images, ids))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
