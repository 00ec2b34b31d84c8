"""Text-to-image diffusion: noise schedules, the DDPM and DDIM samplers, the text-conditioned
model with classifier-free guidance, the sampling loop, and an EMA of the weights.

The UNet predicts the noise ε in x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε (epsilon prediction).
Images are (B, C, H, W) in [-1, 1]; timesteps run from 0 (least noise) to T - 1.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import Tensor, nn

from weft.models.text import PAD_ID, TextConfig, TextTransformer
from weft.models.unet import UNet, UNetConfig


def betas(kind: Literal["linear", "cosine"], steps: int) -> Tensor:
    """(steps,) float64 noise variances β_t.

    linear: DDPM's 1e-4 to 0.02 over 1000 steps, both ends scaled by 1000 / steps.
    cosine: Nichol & Dhariwal's ᾱ_t = f(t) / f(0), f(t) = cos²((t / T + s) / (1 + s) · π/2)
    with s = 0.008, and β_t = 1 - ᾱ_t / ᾱ_(t-1) clipped at 0.999.
    """
    if kind == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps  # (steps + 1,)
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {kind!r}: expected 'linear' or 'cosine'")


class NoiseSchedule:
    """The forward process q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I) for t = 0 .. T - 1."""

    def __init__(self, betas: Tensor) -> None:
        self.betas = betas  # (T,)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)  # (T,) ᾱ_t

    @property
    def steps(self) -> int:
        return len(self.betas)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t from clean images `x0` (B, C, H, W), `noise` like them and timesteps `t` (B,)."""
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)[:, None, None, None]
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise  # (B, C, H, W)


class Scheduler(ABC):
    """Reverse steps over evenly spaced timesteps of a schedule, noisiest first: every
    timestep until `set_timesteps` asks for fewer."""

    def __init__(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule
        self.set_timesteps(schedule.steps)

    def set_timesteps(self, steps: int) -> None:
        if not 1 <= steps <= self.schedule.steps:
            raise ValueError(f"steps {steps} is not in [1, {self.schedule.steps}]")
        spaced = torch.linspace(self.schedule.steps - 1, 0, steps, dtype=torch.float64)
        self.timesteps: list[int] = spaced.round().long().tolist()
        # where each step lands; -1 past the last timestep is clean data
        self._landing = dict(zip(self.timesteps, [*self.timesteps[1:], -1], strict=True))

    @abstractmethod
    def step(
        self, eps: Tensor, t: int, x_t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """x at the next timestep of `timesteps` (B, C, H, W), from x_t and the predicted noise."""

    def _alphas_cumprod(self, t: int) -> tuple[Tensor, Tensor]:
        """ᾱ at `t` and at the timestep the step from `t` lands on (1 for clean data)."""
        abar, landing = self.schedule.alphas_cumprod, self._landing[t]
        return abar[t], (abar[landing] if landing >= 0 else torch.ones((), dtype=abar.dtype))

    @staticmethod
    def _clean(eps: Tensor, abar_t: Tensor, x_t: Tensor) -> Tensor:
        """x̂_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t, clipped to the data range [-1, 1]."""
        return ((x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)

    @staticmethod
    def _posterior_variance(abar_t: Tensor, abar_prev: Tensor) -> Tensor:
        """β̃ = (1 - ᾱ_prev) / (1 - ᾱ_t) · β, the variance of q(x_prev | x_t, x_0), where
        β = 1 - ᾱ_t / ᾱ_prev is that of the whole stride when timesteps are skipped."""
        return (1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)


class DDPMScheduler(Scheduler):
    """Ancestral sampling (Ho et al. 2020): x_prev is drawn from the posterior
    q(x_prev | x_t, x̂_0), of variance β̃."""

    def step(
        self, eps: Tensor, t: int, x_t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        abar_t, abar_prev = self._alphas_cumprod(t)
        beta = 1 - abar_t / abar_prev
        x0 = self._clean(eps, abar_t, x_t)
        x0_coef = abar_prev.sqrt() * beta / (1 - abar_t)
        xt_coef = (1 - beta).sqrt() * (1 - abar_prev) / (1 - abar_t)
        mean = x0_coef * x0 + xt_coef * x_t  # of q(x_prev | x_t, x̂_0)
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return mean + self._posterior_variance(abar_t, abar_prev).sqrt() * noise


class DDIMScheduler(Scheduler):
    """DDIM (Song et al. 2021): x_prev = √ᾱ_prev x̂_0 + √(1 - ᾱ_prev - sigma²) ε̂ + sigma z with
    sigma² = η² β̃. η = 0 is deterministic; η = 1 over every timestep is DDPM."""

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0) -> None:
        if not 0 <= eta <= 1:
            raise ValueError(f"eta {eta} is not in [0, 1]")
        super().__init__(schedule)
        self.eta = eta

    def step(
        self, eps: Tensor, t: int, x_t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        abar_t, abar_prev = self._alphas_cumprod(t)
        x0 = self._clean(eps, abar_t, x_t)
        # the ε̂ that goes with the clipped x̂_0; the same ε̂ when nothing was clipped
        eps = (x_t - abar_t.sqrt() * x0) / (1 - abar_t).sqrt()
        variance = self.eta**2 * self._posterior_variance(abar_t, abar_prev)  # sigma²
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return (
            abar_prev.sqrt() * x0
            + (1 - abar_prev - variance).sqrt() * eps
            + variance.sqrt() * noise
        )


class GenerationConfig(BaseModel):
    """How a model generates unless asked otherwise: a CFG sweep stores its chosen setting
    here, in the model's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cfg_scale: float = Field(default=3.0, ge=0)
    steps: PositiveInt = Field(default=50, description="DDIM steps.")
    negative_prompt: str = Field(default="", description="Empty: the learned null text.")


class TextToImageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TextConfig = TextConfig()
    unet: UNetConfig = UNetConfig()
    schedule: Literal["linear", "cosine"] = "cosine"
    train_steps: PositiveInt = 1000
    # the share of captions swapped for the null text in training, so that guidance works
    uncond_prob: float = Field(default=0.1, ge=0, lt=1)
    generation: GenerationConfig = GenerationConfig()


class TextToImage(nn.Module):
    """A text transformer whose token features the UNet cross-attends to. A learned null
    text (`null`) stands in for dropped captions, so guidance needs no tokenizer."""

    def __init__(self, config: TextToImageConfig) -> None:
        super().__init__()
        self.config = config
        text = config.text
        self.text = TextTransformer(text)
        self.unet = UNet(config.unet, context_dim=text.width)
        self.null = nn.Parameter(torch.randn(1, text.context_length, text.width) * 0.02)
        self.schedule = NoiseSchedule(betas(config.schedule, config.train_steps))

    def forward(
        self, images: Tensor, ids: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The training loss: DDP and FSDP wrap `forward`, so training goes through it."""
        return self.loss(images, ids, generator)

    def loss(self, images: Tensor, ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """MSE between the noise added to `images` (B, C, H, W) at random timesteps and the
        noise predicted for the result; each caption (B, L) is swapped for the null text
        with probability `uncond_prob`, so one model serves guidance."""
        b, device = len(images), images.device
        t = torch.randint(0, self.config.train_steps, (b,), generator=generator, device=device)
        noise = torch.randn(images.shape, generator=generator, device=device, dtype=images.dtype)
        drop = torch.rand(b, generator=generator, device=device) < self.config.uncond_prob  # (B,)
        context, mask = self._condition(ids, b)
        null, _ = self._condition(None, b)
        context = torch.where(drop[:, None, None], null, context)  # (B, L, width)
        mask = mask | drop[:, None]  # every token of the null text is real
        eps = self.unet(self.schedule.add_noise(images, noise, t), t, context, mask)
        return F.mse_loss(eps, noise)

    def predict_noise(self, x: Tensor, t: Tensor, ids: Tensor | None) -> Tensor:
        """ε̂ (B, C, H, W) for `x` at timesteps `t` (B,), given captions `ids` (B, L) or,
        for None, the null text."""
        return self.unet(x, t, *self._condition(ids, len(x)))

    def guided_noise(
        self,
        x: Tensor,
        t: Tensor,
        ids: Tensor,
        scale: float,
        negative_ids: Tensor | None = None,
    ) -> Tensor:
        """Classifier-free guidance: ε_u + scale · (ε_c - ε_u), ε_c given `ids` and ε_u given
        the null text or the negative prompt. Scale 1 is ε_c alone, in one UNet pass;
        otherwise both predictions come from one UNet pass over a doubled batch."""
        if scale == 1:
            return self.predict_noise(x, t, ids)
        context, mask = self._condition(ids, len(x))
        negative, negative_mask = self._condition(negative_ids, len(x))
        eps_c, eps_u = self.unet(
            torch.cat([x, x]),
            torch.cat([t, t]),
            torch.cat([context, negative]),
            torch.cat([mask, negative_mask]),
        ).chunk(2)
        return eps_u + scale * (eps_c - eps_u)

    def _condition(self, ids: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
        """Text features (B, L, width) and their key mask (B, L) for the cross-attention, L the
        context length: shorter `ids` are padded to it; None, or a row of padding only, gives
        the null text."""
        length = self.config.text.context_length
        null = self.null.expand(batch, -1, -1)
        every = torch.ones(batch, length, dtype=torch.bool, device=self.null.device)
        if ids is None:
            return null, every
        if ids.shape[1] < length:  # padding changes no feature: padded keys are masked
            ids = F.pad(ids, (0, length - ids.shape[1]), value=PAD_ID)
        mask = ids != PAD_ID
        blank = ~mask.any(dim=1)  # (B,)
        context = self.text(ids)
        if blank.any():
            context = torch.where(blank[:, None, None], null, context)
            mask = mask | blank[:, None]
        return context, mask


@torch.no_grad()
def sample(
    model: TextToImage,
    ids: Tensor,
    scheduler: Scheduler,
    steps: int,
    guidance_scale: float,
    negative_ids: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Images (B, C, H, W) in [-1, 1] for captions `ids` (B, L): Gaussian noise denoised over
    `steps` timesteps of `scheduler` with classifier-free guidance. Sample with the EMA
    weights, the model in eval mode."""
    c = model.config.unet
    shape = (len(ids), c.in_channels, c.image_size, c.image_size)
    x = torch.randn(shape, generator=generator, device=ids.device)  # x_T
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        timesteps = torch.full((len(x),), t, device=x.device)  # (B,)
        eps = model.guided_noise(x, timesteps, ids, guidance_scale, negative_ids)
        x = scheduler.step(eps, t, x, generator)
    return x.clamp(-1, 1)


class EMA:
    """Exponential moving average of a model's parameters, the weights to sample with:
    after each optimiser step, shadow ← d · shadow + (1 - d) · parameter.

    With `warmup`, d = min(decay, (1 + n) / (10 + n)) at the n-th update (the warm-up of
    TensorFlow's `ExponentialMovingAverage`): early on the average follows the training
    weights, so a short run does not sample with weights that are mostly their random
    initialisation (0.999 over 200 steps keeps 82 % of it)."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0 <= decay <= 1:
            raise ValueError(f"decay {decay} is not in [0, 1]")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = self.updates
        decay = min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p, 1 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (the training model or a copy of it)."""
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])

    def state_dict(self) -> dict[str, Tensor]:
        """The shadow weights by parameter name, for a checkpoint."""
        return dict(self.shadow)

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state.keys() != self.shadow.keys():
            raise ValueError("EMA state does not name the same parameters as the model")
        for name, value in state.items():
            self.shadow[name].copy_(value)
