"""Transformer parts shared by every model: attention (self or cross, masked, with its
weights on request), the MLP, and the pre-norm block.

Masks follow one convention everywhere: `True` means "may attend". A key padding mask is
(B, S) over the keys; a causal mask is built here from the query and key lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head attention. `context` None is self-attention; otherwise queries come from
    `x` and keys/values from `context` (cross-attention). With `keep_weights`, the last
    call's attention weights (B, heads, L, S) stay on `self.weights` for visualisation."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.keep_weights = False
        self.weights: Tensor | None = None

    def forward(
        self,
        x: Tensor,  # (B, L, D)
        context: Tensor | None = None,  # (B, S, Dc)
        key_mask: Tensor | None = None,  # (B, S) bool, True = a real key
        causal: bool = False,
    ) -> Tensor:
        b, length, dim = x.shape
        source = x if context is None else context
        q = self.q(x).view(b, length, self.heads, -1).transpose(1, 2)  # (B, H, L, Dh)
        k, v = self.kv(source).view(b, source.shape[1], 2, self.heads, -1).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, H, S, Dh)
        mask = _mask(key_mask, causal, length, source.shape[1], x.device)
        if self.keep_weights:
            scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            self.weights = weights.detach()
            y = weights @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))


def _mask(
    key_mask: Tensor | None, causal: bool, length: int, keys: int, device: torch.device
) -> Tensor | None:
    """(B or 1, 1, L, S) bool, True = may attend; None when everything may."""
    mask = None
    if causal:
        mask = torch.ones(length, keys, dtype=torch.bool, device=device).tril(keys - length)
        mask = mask[None, None]
    if key_mask is not None:
        padding = key_mask[:, None, None, :].bool()
        mask = padding if mask is None else mask & padding
    return mask


class MLP(nn.Sequential):
    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, context_dim: int | None = None
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross: Attention | None = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross = Attention(dim, heads, context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(
        self,
        x: Tensor,  # (B, L, D)
        key_mask: Tensor | None = None,  # (B, L) over x itself
        causal: bool = False,
        context: Tensor | None = None,  # (B, S, Dc)
        context_mask: Tensor | None = None,  # (B, S)
    ) -> Tensor:
        x = x + self.attn(self.norm1(x), key_mask=key_mask, causal=causal)
        if self.cross is not None:
            if context is None:
                raise ValueError("this block cross-attends: pass `context`")
            x = x + self.cross(self.norm_cross(x), context=context, key_mask=context_mask)
        return x + self.mlp(self.norm2(x))


def recorded_weights(attentions: Sequence[Attention], run: Callable[[], object]) -> Tensor:
    """Call `run` with `attentions` keeping their weights; (len, B, heads, L, S), stacked."""
    for attn in attentions:
        attn.keep_weights = True
    try:
        run()
        return torch.stack([attn.weights for attn in attentions if attn.weights is not None])
    finally:
        for attn in attentions:
            attn.keep_weights, attn.weights = False, None
