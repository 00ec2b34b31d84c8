"""Text transformer encoder: token and position embeddings, pre-norm blocks, pooling at
`<eos>`. CLIP's text tower and the diffusion model's conditioning both use it.

Ids come from `weft.models.tokenizer`: `<bos> ... <eos>` then padding with id 0, so the
`<eos>` of a row sits just before its first pad, and padded keys are masked out.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from weft.models.layers import Block

PAD_ID = 0  # the tokenizer's first special token


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = 4096
    context_length: int = 32
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    causal: bool = True  # CLIP's text tower is causal; pooling at <eos> then sees the whole text
    lowercase: bool = False  # the tokenizer folds case: "Cat" and "cat" are one token


class TextTransformer(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.width)
        self.position = nn.Parameter(torch.randn(1, c.context_length, c.width) * 0.01)
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.width)

    def forward(self, ids: Tensor) -> Tensor:
        """(B, L) token ids → (B, L, width) token features."""
        if ids.shape[1] > self.config.context_length:
            raise ValueError(f"{ids.shape[1]} tokens > context_length {self.config.context_length}")
        x = self.embed(ids) + self.position[:, : ids.shape[1]]
        mask = ids != PAD_ID  # (B, L)
        for block in self.blocks:
            x = block(x, key_mask=mask, causal=self.config.causal)
        return self.norm(x)

    @staticmethod
    def pool(tokens: Tensor, ids: Tensor) -> Tensor:
        """(B, L, D) features → (B, D): the features at each row's `<eos>`, its last token."""
        eos = (ids != PAD_ID).sum(dim=1) - 1  # (B,)
        return tokens[torch.arange(len(ids), device=ids.device), eos]
