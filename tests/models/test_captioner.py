"""The captioner on CPU at tiny sizes, with a real tokenizer trained on synthetic captions."""

from __future__ import annotations

import pytest
import torch

from weft.models.captioner import Captioner, CaptionerConfig
from weft.models.text import PAD_ID, TextConfig
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViTConfig

COLOURS = ["red", "green", "blue", "yellow", "black", "white"]
SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
CAPTIONS = [f"a {c} {s} on a grey background" for c in COLOURS for s in SHAPES]
MEMORISED = ["a red circle", "a blue square on grey", "a small green star", "two black rings"]
LENGTH = 12


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(CAPTIONS + MEMORISED, vocab_size=320, min_frequency=1)


def tiny(tokenizer: Tokenizer) -> Captioner:
    torch.manual_seed(0)
    config = CaptionerConfig(
        vision=ViTConfig(image_size=16, patch_size=4, width=32, depth=1, heads=2),
        text=TextConfig(
            vocab_size=tokenizer.vocab_size, context_length=LENGTH, width=32, depth=2, heads=2
        ),
    )
    return Captioner(config).eval()


@pytest.fixture(scope="module")
def memorised(tokenizer: Tokenizer) -> tuple[Captioner, torch.Tensor, float, float]:
    """A captioner overfit on four (random image, caption) pairs: model, images, first and
    last loss."""
    model = tiny(tokenizer)
    images = torch.randn(len(MEMORISED), 3, 16, 16)
    ids = tokenizer.encode(MEMORISED, LENGTH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    losses = []
    for _ in range(80):
        loss = model.loss(images, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model.eval(), images, losses[0], losses[-1]


def greedy(model: Captioner, images: torch.Tensor, tokenizer: Tokenizer) -> list[list[int]]:
    """Greedy decoding written out: append the most likely next id until <eos> or LENGTH."""
    captions = []
    for image in images:
        ids = [tokenizer.bos_id]
        while ids[-1] != tokenizer.eos_id and len(ids) < LENGTH:
            logits = model(image[None], torch.tensor([ids]))[0, -1]
            ids.append(int(logits.argmax()))
        captions.append(ids)
    return captions


def test_config_round_trips_and_rejects_a_non_causal_decoder() -> None:
    config = CaptionerConfig(vision=ViTConfig(), text=TextConfig(vocab_size=300))
    assert CaptionerConfig.model_validate(config.model_dump(mode="json")) == config
    with pytest.raises(ValueError, match="causal must be true"):
        CaptionerConfig(text=TextConfig(causal=False))


def test_no_token_attends_to_a_future_token(tokenizer: Tokenizer) -> None:
    model = tiny(tokenizer)
    images = torch.randn(2, 3, 16, 16)
    ids = torch.randint(3, tokenizer.vocab_size, (2, 8))
    changed = ids.clone()
    changed[:, 5] = (ids[:, 5] + 1 - 3) % (tokenizer.vocab_size - 3) + 3
    before, after = model(images, ids), model(images, changed)  # (B, L, V)
    torch.testing.assert_close(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_pad_tokens_at_the_end_leave_real_logits_unchanged(tokenizer: Tokenizer) -> None:
    model = tiny(tokenizer)
    images = torch.randn(2, 3, 16, 16)
    short = tokenizer.encode(["a red circle", "a blue square on grey"], 8)
    padded = torch.cat([short, torch.full((2, 4), PAD_ID)], dim=1)
    real = short != PAD_ID
    torch.testing.assert_close(model(images, padded)[:, :8][real], model(images, short)[real])


def test_pad_keys_are_masked_even_between_real_tokens(tokenizer: Tokenizer) -> None:
    """Changing the pad embedding moves no real token's logits, though the real tokens after
    the pad would see it through causal attention if padding were not masked."""
    model = tiny(tokenizer)
    images = torch.randn(1, 3, 16, 16)
    ids = torch.tensor([[tokenizer.bos_id, 40, 41, PAD_ID, 42, 43]])
    real = ids != PAD_ID
    before = model(images, ids)[real]
    with torch.no_grad():
        model.embed.weight[PAD_ID] += torch.randn(model.config.text.width)
    torch.testing.assert_close(model(images, ids)[real], before)


def test_overfits_a_tiny_batch_and_decodes_the_memorised_captions(
    memorised: tuple[Captioner, torch.Tensor, float, float], tokenizer: Tokenizer
) -> None:
    model, images, first, last = memorised
    assert last < 0.05 * first
    for beam_size in (1, 3):
        ids = model.generate(images, tokenizer.bos_id, tokenizer.eos_id, LENGTH, beam_size)
        assert [tokenizer.decode(row) for row in ids] == MEMORISED


def test_one_beam_is_greedy_decoding(
    memorised: tuple[Captioner, torch.Tensor, float, float], tokenizer: Tokenizer
) -> None:
    model, memorised_images, _, _ = memorised
    torch.manual_seed(1)
    images = torch.cat([memorised_images, torch.randn(4, 3, 16, 16)])
    ids = model.generate(images, tokenizer.bos_id, tokenizer.eos_id, LENGTH, beam_size=1)
    assert ids == greedy(model, images, tokenizer)


@pytest.mark.parametrize("max_length", [4, LENGTH])
def test_beam_search_ends_at_eos_or_max_length(
    memorised: tuple[Captioner, torch.Tensor, float, float],
    tokenizer: Tokenizer,
    max_length: int,
) -> None:
    model, _, _, _ = memorised
    torch.manual_seed(2)
    images = torch.randn(5, 3, 16, 16)
    rows = model.generate(
        images, tokenizer.bos_id, tokenizer.eos_id, max_length, beam_size=4, length_penalty=0.6
    )
    assert len(rows) == len(images)
    for row in rows:
        assert row[0] == tokenizer.bos_id and 2 <= len(row) <= max_length
        assert tokenizer.eos_id not in row[:-1] and PAD_ID not in row
        assert row[-1] == tokenizer.eos_id or len(row) == max_length


def test_cross_attention_maps_have_their_shape_and_rows_sum_to_one(
    tokenizer: Tokenizer,
) -> None:
    model = tiny(tokenizer)
    images = torch.randn(3, 3, 16, 16)
    ids = tokenizer.encode(["a red circle", "a star", "two black rings"], LENGTH)
    maps = model.cross_attention_maps(images, ids)
    c = model.config
    assert maps.shape == (c.text.depth, 3, c.text.heads, LENGTH, 1 + c.vision.patches)
    torch.testing.assert_close(maps.sum(dim=-1), torch.ones(maps.shape[:-1]))
    assert all(not block.cross.keep_weights for block in model.blocks)


def test_the_likelihood_ranks_each_image_by_how_well_it_explains_the_text(
    memorised: tuple[Captioner, torch.Tensor, float, float], tokenizer: Tokenizer
) -> None:
    model, images, _, _ = memorised
    for i, caption in enumerate(MEMORISED):
        ids = tokenizer.encode([caption] * len(images), LENGTH)
        scores = model.log_likelihood(images, ids)
        assert int(scores.argmax()) == i  # its own image explains a caption best
        assert scores[i] > -0.2 and scores.shape == (len(images),)
    # the mean per token is the teacher-forcing loss, negated, for one row
    one = tokenizer.encode(MEMORISED[:1], LENGTH)
    loss = model.loss(images[:1], one)
    assert model.log_likelihood(images[:1], one).item() == pytest.approx(-loss.item(), rel=1e-5)
