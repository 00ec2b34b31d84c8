"""CLIP: one embedding space, InfoNCE with a learned temperature, zero-shot from prompts."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from weft.models.clip import (
    CLIP,
    CLIPConfig,
    contrastive_loss,
    zero_shot_classifier,
    zero_shot_logits,
)
from weft.models.layers import Attention
from weft.models.text import TextConfig, TextTransformer
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViTConfig

COLOURS = ["red", "green", "blue", "yellow"]
CONFIG = CLIPConfig(
    vision=ViTConfig(image_size=8, patch_size=4, width=32, depth=1, heads=2),
    text=TextConfig(vocab_size=300, context_length=12, width=32, depth=1, heads=2),
    embed_dim=16,
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train([f"a photo of a {c} square." for c in COLOURS] * 5, vocab_size=300)


def colour_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat images of four colours, with a little noise, and their colour index."""
    rgb = torch.tensor([[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]], dtype=torch.float32)
    labels = torch.arange(n) % 4
    images = rgb[labels][:, :, None, None].expand(n, 3, 8, 8) + 0.1 * torch.randn(n, 3, 8, 8)
    return images, labels


def test_embeddings_are_unit_length_and_the_loss_is_symmetric() -> None:
    model = CLIP(CONFIG)
    image, text, scale = model(torch.randn(4, 3, 8, 8), torch.randint(3, 300, (4, 12)))
    assert image.shape == text.shape == (4, 16)
    assert torch.allclose(image.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-4)
    assert contrastive_loss(image, text, scale).item() == pytest.approx(
        contrastive_loss(text, image, scale).item()
    )


def test_the_loss_is_low_for_matched_pairs_and_high_for_swapped_ones() -> None:
    emb = F.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(50.0)
    assert contrastive_loss(emb, emb, scale) < 0.1
    assert contrastive_loss(emb, emb.roll(1, 0), scale) > 5


def test_text_pools_at_eos_and_ignores_padding(tokenizer: Tokenizer) -> None:
    model = CLIP(CONFIG).eval()
    short = tokenizer.encode(["a photo of a red square."], 12)
    eos = int((short != 0).sum()) - 1
    tokens = model.text(short)
    assert torch.equal(TextTransformer.pool(tokens, short), tokens[:, eos])
    # a causal text tower: a token never sees later ones, so appending words keeps the prefix
    longer = tokenizer.encode(["a photo of a red square. a photo"], 12)
    n = eos  # tokens before the first <eos> are the same in both rows
    assert torch.equal(short[:, :n], longer[:, :n])
    assert torch.allclose(model.text(longer)[:, :n], tokens[:, :n], atol=1e-5)


def test_clip_learns_colours_and_classifies_them_zero_shot(tokenizer: Tokenizer) -> None:
    torch.manual_seed(0)
    model = CLIP(CONFIG)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start_temperature = model.temperature
    for _ in range(80):
        images, labels = colour_images(8)
        ids = tokenizer.encode([f"a photo of a {COLOURS[i]} square." for i in labels], 12)
        loss = contrastive_loss(*model(images, ids))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        model.clamp_temperature()
    assert model.temperature != pytest.approx(start_temperature, rel=1e-3)
    model.eval()
    classifier = zero_shot_classifier(model, tokenizer, COLOURS, ["a photo of a {} square."])
    images, labels = colour_images(40)
    accuracy = (zero_shot_logits(model, images, classifier).argmax(1) == labels).float().mean()
    assert accuracy == 1.0


def test_the_temperature_is_clamped_like_clip() -> None:
    model = CLIP(CONFIG)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_temperature()
    assert model.logit_scale.item() == pytest.approx(math.log(100))
    assert model(torch.randn(1, 3, 8, 8), torch.randint(3, 300, (1, 12)))[2].item() <= 100 + 1e-3


def test_keeping_attention_weights_gives_the_same_output() -> None:
    attn = Attention(16, 4)
    x, mask = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    fused = attn(x, key_mask=mask, causal=True)
    attn.keep_weights = True
    explicit = attn(x, key_mask=mask, causal=True)
    assert torch.allclose(fused, explicit, atol=1e-5)
    assert attn.weights is not None and attn.weights[0, :, :, 3:].abs().max() == 0
    assert attn.weights[:, :, 0, 1:].abs().max() == 0  # causal: token 0 sees only itself


def _rank_gradients(
    rank: int, world: int, store: str, image: torch.Tensor, text: torch.Tensor
) -> None:
    """One data-parallel worker: its half of the batch, the loss over the global batch."""
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world
    )
    try:
        rows = slice(rank * len(image) // world, (rank + 1) * len(image) // world)
        mine_image = image[rows].clone().requires_grad_()
        mine_text = text[rows].clone().requires_grad_()
        loss = contrastive_loss(mine_image, mine_text, torch.tensor(10.0))
        loss.backward()
        torch.save((loss.detach(), mine_image.grad, mine_text.grad), f"{store}.rank{rank}")
    finally:
        torch.distributed.destroy_process_group()
    # torch 2.13's functional collectives leave a C++ thread behind that aborts the
    # interpreter's exit about one time in ten (SIGABRT, "terminate called without an active
    # exception"). The results are on disk: leave without running the exit handlers.
    os._exit(0)


def test_the_loss_gathers_negatives_across_workers_with_gradients(tmp_path: Path) -> None:
    torch.manual_seed(0)
    image = F.normalize(torch.randn(8, 16), dim=-1)
    text = F.normalize(torch.randn(8, 16), dim=-1)
    store = str(tmp_path / "store")
    torch.multiprocessing.spawn(_rank_gradients, args=(2, store, image, text), nprocs=2)
    results = [torch.load(f"{store}.rank{r}") for r in range(2)]
    whole_image, whole_text = image.clone().requires_grad_(), text.clone().requires_grad_()
    whole = contrastive_loss(whole_image, whole_text, torch.tensor(10.0))
    whole.backward()
    # the workers' mean loss is the whole batch's; DDP averages gradients over workers
    assert torch.stack([loss for loss, _, _ in results]).mean().item() == pytest.approx(
        whole.item(), rel=1e-5
    )
    grads = torch.cat([g for _, g, _ in results]) / 2
    assert torch.allclose(grads, whole_image.grad, atol=1e-6)
    assert torch.allclose(torch.cat([g for _, _, g in results]) / 2, whole_text.grad, atol=1e-6)
