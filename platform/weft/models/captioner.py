"""Image captioner: a ViT encodes the image to tokens, and an autoregressive text decoder
(causal self-attention, cross-attention to the image tokens) writes the caption.

Trained with teacher forcing on tokenizer rows `<bos> ... <eos> <pad>...`: each position
predicts the next id, padding ignored. `generate` is beam search (greedy with one beam).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from torch import Tensor, nn

from weft.models.layers import Block, recorded_weights
from weft.models.text import PAD_ID, TextConfig
from weft.models.vit import ViT, ViTConfig


class CaptionerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vision: ViTConfig = ViTConfig()
    text: TextConfig = TextConfig()  # the decoder
    beam_size: PositiveInt = Field(default=3, description="Beam search width by default.")

    @model_validator(mode="after")
    def _decoder_is_causal(self) -> CaptionerConfig:
        if not self.text.causal:
            raise ValueError("text.causal must be true: the caption decoder is autoregressive")
        return self


class Captioner(nn.Module):
    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        self.config = config
        c = config.text
        self.visual = ViT(config.vision)
        self.embed = nn.Embedding(c.vocab_size, c.width)
        self.position = nn.Parameter(torch.randn(1, c.context_length, c.width) * 0.01)
        self.blocks = nn.ModuleList(
            Block(c.width, c.heads, c.mlp_ratio, context_dim=config.vision.width)
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.vocab_size, bias=False)

    def forward(self, images: Tensor, ids: Tensor) -> Tensor:
        """(B, C, H, W) images and (B, L) ids → (B, L, vocab) next-token logits."""
        return self.decode(self.visual(images), ids)

    def decode(self, image_tokens: Tensor, ids: Tensor) -> Tensor:
        """(B, 1 + patches, vision width) image tokens and (B, L) ids → (B, L, vocab)."""
        if ids.shape[1] > self.config.text.context_length:
            raise ValueError(
                f"{ids.shape[1]} tokens > context_length {self.config.text.context_length}"
            )
        x = self.embed(ids) + self.position[:, : ids.shape[1]]  # (B, L, D)
        mask = ids != PAD_ID  # (B, L)
        for block in self.blocks:
            x = block(x, key_mask=mask, causal=True, context=image_tokens)
        return self.head(self.norm(x))

    def loss(self, images: Tensor, ids: Tensor) -> Tensor:
        return teacher_forcing_loss(self, images, ids)

    @torch.no_grad()
    def log_likelihood(self, images: Tensor, ids: Tensor) -> Tensor:
        """(B,) mean log-probability per token of each row of `ids` (from its first id after
        <bos>, <eos> included, padding not) given its image: how well the image explains the
        text, the score a reranker orders candidate images by."""
        logits = self(images, ids[:, :-1])
        targets = ids[:, 1:]
        picked = logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]  # (B, L - 1)
        real = (targets != PAD_ID).float()
        return (picked * real).sum(-1) / real.sum(-1).clamp(min=1)

    @torch.no_grad()
    def generate(
        self,
        images: Tensor,
        bos_id: int,
        eos_id: int,
        max_length: int,
        beam_size: int = 1,
        length_penalty: float = 1.0,
    ) -> list[list[int]]:
        """Each image's caption as ids `<bos> ... <eos>`, or cut at `max_length` ids.

        Beam search over `beam_size` hypotheses per image, batched over images; one beam is
        greedy decoding. A beam that has emitted `<eos>` stays among the hypotheses with its
        score fixed. The answer is the hypothesis with the best sum of log-probabilities
        divided by (tokens after `<bos>`) ** `length_penalty`.
        """
        if max_length < 2:
            raise ValueError(f"max_length {max_length} leaves no room after <bos>")
        if beam_size < 1:
            raise ValueError(f"beam_size {beam_size} must be at least 1")
        b, k, device = len(images), beam_size, images.device
        context = self.visual(images).repeat_interleave(k, dim=0)  # (B * K, S, Dv)
        ids = torch.full((b * k, 1), bos_id, dtype=torch.long, device=device)  # (B * K, T)
        scores = torch.zeros(b, k, device=device)
        scores[:, 1:] = float("-inf")  # the beams start identical: expand only the first
        done = torch.zeros(b * k, dtype=torch.bool, device=device)
        for _ in range(max_length - 1):
            logp = self.decode(context, ids)[:, -1].log_softmax(dim=-1)  # (B * K, V)
            logp[:, PAD_ID] = float("-inf")  # <pad> only ever follows <eos>
            logp[done] = float("-inf")
            logp[done, PAD_ID] = 0.0  # a finished beam only extends with padding, at no cost
            vocab = logp.shape[-1]
            scores, index = (scores.view(-1, 1) + logp).view(b, k * vocab).topk(k, dim=-1)
            rows = (index // vocab + torch.arange(b, device=device)[:, None] * k).flatten()
            tokens = (index % vocab).flatten()  # (B * K,)
            ids = torch.cat([ids[rows], tokens[:, None]], dim=1)
            done = done[rows] | (tokens == eos_id)
            if done.all():
                break
        lengths = (ids[:, 1:] != PAD_ID).sum(dim=1).view(b, k)
        best = (scores / lengths**length_penalty).argmax(dim=1)  # (B,)
        chosen = ids.view(b, k, -1)[torch.arange(b, device=device), best]  # (B, T)
        return [row[row != PAD_ID].tolist() for row in chosen]

    @torch.no_grad()
    def cross_attention_maps(self, images: Tensor, ids: Tensor) -> Tensor:
        """(depth, B, heads, L, 1 + patches): where each text token looks in the image, per
        block. Column 0 is the CLS token; reshape the rest to the patch grid."""
        attentions = [b.cross for b in self.blocks if isinstance(b, Block) and b.cross is not None]
        return recorded_weights(attentions, lambda: self(images, ids))


def teacher_forcing_loss(model: nn.Module, images: Tensor, ids: Tensor) -> Tensor:
    """Predict ids[:, 1:] from ids[:, :-1]; padding is ignored. `model` is a Captioner or a
    wrapper that calls its forward (DDP, FSDP, DeepSpeed)."""
    logits = model(images, ids[:, :-1])  # (B, L - 1, V)
    return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), ignore_index=PAD_ID)
