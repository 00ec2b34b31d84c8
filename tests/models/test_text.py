"""The text transformer: padding is invisible, causality is a config choice."""

from __future__ import annotations

import torch

from weft.models.text import PAD_ID, TextConfig, TextTransformer

IDS = torch.tensor([[1, 7, 8, 9, 2, PAD_ID, PAD_ID, PAD_ID]])  # <bos> 7 8 9 <eos> pads


def test_padding_changes_no_real_token_in_either_direction() -> None:
    for causal in (True, False):
        model = TextTransformer(TextConfig(vocab_size=16, context_length=8, causal=causal)).eval()
        with torch.no_grad():
            full, short = model(IDS), model(IDS[:, :5])
        assert torch.allclose(full[:, :5], short, atol=1e-5)
        assert torch.equal(TextTransformer.pool(full, IDS), full[:, 4])


def test_a_bidirectional_tower_lets_early_tokens_see_later_ones() -> None:
    changed = IDS.clone()
    changed[0, 3] = 10
    for causal, early_changes in ((True, False), (False, True)):
        model = TextTransformer(TextConfig(vocab_size=16, context_length=8, causal=causal)).eval()
        with torch.no_grad():
            moved = (model(IDS)[:, :3] - model(changed)[:, :3]).abs().max().item()
        assert (moved > 1e-4) == early_changes
