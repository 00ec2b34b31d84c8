"""U-Net noise predictor for the diffusion model.

    stem → (level → skip, downsample) per level → middle
         → (concat skip → level → upsample) per level, lowest first → out

A level is `res_blocks` residual blocks at one resolution. Each residual block takes the
timestep through adaptive normalisation: its second GroupNorm's scale and shift come from
the time embedding (Dhariwal & Nichol 2021). At the attention levels (the lowest resolution
by default) and in the middle, each residual block is followed by a transformer `Block` over
the H*W positions: self-attention, cross-attention to the text features, MLP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from torch import Tensor, nn

from weft.models.layers import Block

GROUPS = 8  # GroupNorm groups: every level's width is a multiple of it


class UNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: PositiveInt = 32
    in_channels: PositiveInt = 3
    base_channels: PositiveInt = 32
    # one level per entry, widths base_channels * mult; each level after the first halves H, W
    channel_mults: tuple[PositiveInt, ...] = Field(default=(1, 2), min_length=1)
    res_blocks: PositiveInt = 1  # per level, on each path
    heads: PositiveInt = 4
    attention_levels: tuple[int, ...] = (-1,)  # indexes into channel_mults; -1 is the lowest
    dropout: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _sizes_fit(self) -> UNetConfig:
        levels = len(self.channel_mults)
        if self.image_size % 2 ** (levels - 1):
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of {2 ** (levels - 1)}: "
                f"the {levels} levels of channel_mults halve it {levels - 1} times"
            )
        for level, width in enumerate(self.widths):
            if width % GROUPS:
                raise ValueError(
                    f"base_channels * channel_mults[{level}] = {width} is not a multiple of "
                    f"{GROUPS} (the GroupNorm groups)"
                )
        if not all(-levels <= i < levels for i in self.attention_levels):
            raise ValueError(
                f"attention_levels {self.attention_levels} are not all levels of channel_mults "
                f"(0 to {levels - 1}, or negative from the lowest)"
            )
        for level in self.attended | {levels - 1}:  # the middle block attends at the lowest
            if self.widths[level] % self.heads:
                raise ValueError(
                    f"heads {self.heads} does not divide the {self.widths[level]} channels "
                    f"of attention level {level}"
                )
        return self

    @property
    def widths(self) -> list[int]:
        """Channels of each level, from the full resolution down."""
        return [self.base_channels * mult for mult in self.channel_mults]

    @property
    def attended(self) -> set[int]:
        """The attention levels as non-negative indexes."""
        return {i % len(self.channel_mults) for i in self.attention_levels}

    @property
    def time_dim(self) -> int:
        return 4 * self.base_channels


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """(B,) timesteps → (B, dim) sinusoids at geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """Two GroupNorm-SiLU-conv layers and a residual connection; the second norm is scaled
    and shifted by the time embedding."""

    def __init__(self, cin: int, cout: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(GROUPS, cout, affine=False)  # the time embedding is its affine
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        """(B, Cin, H, W) and the time embedding (B, time_dim) → (B, Cout, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time(F.silu(time))[:, :, None, None].chunk(2, dim=1)  # (B, Cout, 1, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """A transformer `Block` over the H*W positions of a feature map, cross-attending to the
    text. The convolutions before it have told each position where it is."""

    def __init__(self, channels: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.block = Block(channels, heads, context_dim=context_dim)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        tokens = self.block(tokens, context=context, context_mask=context_mask)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """`res_blocks` residual blocks at one resolution, each followed by an AttentionBlock
    when the level attends."""

    def __init__(
        self, cin: int, cout: int, config: UNetConfig, context_dim: int, attends: bool
    ) -> None:
        super().__init__()
        c = config
        self.res = nn.ModuleList(
            ResBlock(cin if i == 0 else cout, cout, c.time_dim, c.dropout)
            for i in range(c.res_blocks)
        )
        self.attn = (
            nn.ModuleList(AttentionBlock(cout, c.heads, context_dim) for _ in range(c.res_blocks))
            if attends
            else None
        )

    def forward(self, x: Tensor, time: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        for i, res in enumerate(self.res):
            x = res(x, time)
            if self.attn is not None:
                x = self.attn[i](x, context, context_mask)
        return x


class UNet(nn.Module):
    """Predicts the noise in a noisy image at a timestep, attending to text features of
    width `context_dim`."""

    def __init__(self, config: UNetConfig, context_dim: int) -> None:
        super().__init__()
        self.config = config
        c = config
        widths = c.widths
        self.time = nn.Sequential(
            nn.Linear(c.base_channels, c.time_dim), nn.SiLU(), nn.Linear(c.time_dim, c.time_dim)
        )
        self.stem = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cin = widths[0]
        for level, width in enumerate(widths):
            self.down.append(Level(cin, width, c, context_dim, level in c.attended))
            last = level == len(widths) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1)
            )
            cin = width
        self.middle = Level(cin, cin, c, context_dim, attends=True)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            self.up.append(Level(cin + width, width, c, context_dim, level in c.attended))
            self.upsample.append(
                nn.Identity()
                if level == 0
                else nn.Sequential(
                    nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1)
                )
            )
            cin = width
        self.out = nn.Sequential(
            nn.GroupNorm(GROUPS, cin), nn.SiLU(), nn.Conv2d(cin, c.in_channels, 3, padding=1)
        )

    def forward(
        self,
        x: Tensor,  # (B, C, H, W) noisy images
        t: Tensor,  # (B,) long timesteps
        context: Tensor,  # (B, S, Dc) text features
        context_mask: Tensor,  # (B, S) bool, True = a real token
    ) -> Tensor:
        """The predicted noise, (B, C, H, W)."""
        time = self.time(timestep_embedding(t, self.config.base_channels))  # (B, time_dim)
        h = self.stem(x)  # (B, widths[0], H, W)
        skips: list[Tensor] = []
        for level, downsample in zip(self.down, self.downsample, strict=True):
            h = level(h, time, context, context_mask)
            skips.append(h)
            h = downsample(h)
        h = self.middle(h, time, context, context_mask)
        for level, upsample in zip(self.up, self.upsample, strict=True):
            h = level(torch.cat([h, skips.pop()], dim=1), time, context, context_mask)
            h = upsample(h)
        return self.out(h)
