"""The UNet, the noise schedules, DDPM and DDIM, guidance, sampling and the EMA, on tiny
real models on CPU."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from weft.models.diffusion import (
    EMA,
    DDIMScheduler,
    DDPMScheduler,
    NoiseSchedule,
    TextToImage,
    TextToImageConfig,
    betas,
    sample,
)
from weft.models.text import PAD_ID, TextConfig
from weft.models.unet import AttentionBlock, UNet, UNetConfig

TEXT = TextConfig(vocab_size=64, context_length=8, width=16, depth=1, heads=2)
UNET = UNetConfig(image_size=8, base_channels=8, channel_mults=(1, 2), heads=2)
# captions as the tokenizer writes them: <bos>=1 ... <eos>=2, then <pad>=0
IDS = torch.tensor([[1, 5, 9, 2, 0, 0, 0, 0], [1, 7, 3, 11, 4, 2, 0, 0]])
OTHER_IDS = torch.tensor([[1, 40, 2, 0, 0, 0, 0, 0], [1, 33, 21, 2, 0, 0, 0, 0]])


def tiny_model(train_steps: int = 100, image_size: int = 8) -> TextToImage:
    torch.manual_seed(0)
    unet = UNET.model_copy(update={"image_size": image_size})
    return TextToImage(TextToImageConfig(text=TEXT, unet=unet, train_steps=train_steps)).eval()


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def noisy_inputs() -> tuple[Tensor, Tensor]:
    """x (2, 3, 8, 8) and timesteps (2,)."""
    return torch.randn(2, 3, 8, 8, generator=seeded(1)), torch.tensor([30, 70])


@pytest.mark.parametrize(
    "config",
    [
        UNET,
        UNetConfig(
            image_size=16,
            base_channels=8,
            channel_mults=(1, 2, 2),
            res_blocks=2,
            heads=2,
            attention_levels=(1, 2),
        ),
    ],
)
def test_unet_predicts_noise_of_the_input_shape(config: UNetConfig) -> None:
    unet = UNet(config, context_dim=16)
    x = torch.randn(2, 3, config.image_size, config.image_size)
    context, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    assert unet(x, torch.tensor([0, 999]), context, mask).shape == x.shape


def test_the_timestep_changes_the_unet_output() -> None:
    torch.manual_seed(0)
    unet = UNet(UNET, context_dim=16)
    x, context, mask = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 16), torch.ones(2, 5).bool()
    early = unet(x, torch.tensor([10, 10]), context, mask)
    late = unet(x, torch.tensor([500, 500]), context, mask)
    assert not torch.allclose(early, late)


@torch.no_grad()
def test_the_caption_changes_the_predicted_noise() -> None:
    model = tiny_model()
    x, t = noisy_inputs()
    caption, other, null = (model.predict_noise(x, t, ids) for ids in (IDS, OTHER_IDS, None))
    assert not torch.allclose(caption, other)
    assert not torch.allclose(caption, null)


@torch.no_grad()
def test_cross_attention_weights_are_kept_on_request_and_skip_padding() -> None:
    model = tiny_model()
    crosses = [m.block.cross for m in model.unet.modules() if isinstance(m, AttentionBlock)]
    assert crosses
    for attn in crosses:
        attn.keep_weights = True
    model.predict_noise(*noisy_inputs(), IDS)
    real = (IDS != PAD_ID)[:, None, None, :]  # (B, 1, 1, L)
    for attn in crosses:
        weights = attn.weights  # (B, heads, H*W, L)
        assert weights is not None and weights.shape[-1] == TEXT.context_length
        assert torch.all(weights.masked_select(~real) == 0)
        assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


@torch.no_grad()
def test_ids_shorter_than_the_context_guide_like_the_same_ids_padded() -> None:
    model = tiny_model()
    x, t = noisy_inputs()
    assert_close(model.guided_noise(x, t, IDS[:, :6], 4.0), model.guided_noise(x, t, IDS, 4.0))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"image_size": 20, "channel_mults": (1, 2, 2, 2)}, "image_size"),
        ({"base_channels": 12}, "base_channels"),
        ({"attention_levels": (2,)}, "attention_levels"),
        ({"heads": 3}, "heads"),
    ],
)
def test_unet_config_errors_name_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        UNetConfig.model_validate(fields)


def test_the_config_round_trips_through_json() -> None:
    config = TextToImageConfig(text=TEXT, unet=UNET.model_copy(update={"attention_levels": (0, 1)}))
    dumped = json.dumps(config.model_dump(mode="json"))
    assert TextToImageConfig.model_validate(json.loads(dumped)) == config


def test_the_model_overfits_a_tiny_fixed_batch() -> None:
    model = tiny_model(train_steps=1000, image_size=16).train()
    ramp = torch.linspace(-1, 1, 16)
    across, down = ramp.expand(3, 16, 16), ramp[:, None].expand(3, 16, 16)
    images = torch.stack([across, down, -across, -down])  # (4, 3, 16, 16)
    ids = torch.cat([IDS, OTHER_IDS])

    def fixed_loss() -> float:  # the same timesteps, noise and dropped captions every time
        with torch.no_grad():
            return model.loss(images.repeat(8, 1, 1, 1), ids.repeat(8, 1), seeded(0)).item()

    start = fixed_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = seeded(1)
    for _ in range(150):
        loss = model.loss(images, ids, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fixed_loss() < 0.3 * start


def test_captions_dropped_in_training_train_the_null_text() -> None:
    images, ids = torch.randn(8, 3, 8, 8, generator=seeded(0)), IDS.repeat(4, 1)
    for uncond_prob, trained in ((0.0, False), (0.5, True)):
        config = TextToImageConfig(text=TEXT, unet=UNET, uncond_prob=uncond_prob)
        model = TextToImage(config)
        model.loss(images, ids, seeded(0)).backward()
        assert model.null.grad is not None
        assert bool(model.null.grad.abs().sum() > 0) == trained


def test_ddim_with_eta_1_over_every_timestep_steps_like_ddpm() -> None:
    schedule = NoiseSchedule(betas("cosine", 1000))
    ddpm, ddim = DDPMScheduler(schedule), DDIMScheduler(schedule, eta=1.0)
    x_t, eps = torch.randn(2, 3, 8, 8, generator=seeded(0)), torch.randn(2, 3, 8, 8)
    for t in (999, 500, 10):
        drawn = ddpm.step(eps, t, x_t, seeded(t))
        assert_close(ddim.step(eps, t, x_t, seeded(t)), drawn)
        assert not torch.allclose(ddpm.step(eps, t, x_t, seeded(t + 1)), drawn)
    # the last step adds no noise, whatever the seed
    assert_close(ddim.step(eps, 0, x_t, seeded(0)), ddpm.step(eps, 0, x_t, seeded(1)))


@torch.no_grad()
def test_ddim_with_eta_1_over_every_timestep_samples_like_ddpm() -> None:
    model = tiny_model(train_steps=100)
    ddpm = sample(model, IDS, DDPMScheduler(model.schedule), 100, 3.0, generator=seeded(0))
    ddim = sample(model, IDS, DDIMScheduler(model.schedule, eta=1.0), 100, 3.0, generator=seeded(0))
    assert_close(ddim, ddpm, atol=1e-4, rtol=0)


def test_a_ddim_step_with_the_true_noise_lands_on_the_forward_process() -> None:
    schedule = NoiseSchedule(betas("cosine", 1000))
    ddim = DDIMScheduler(schedule)
    ddim.set_timesteps(50)
    x0 = torch.rand(2, 3, 8, 8, generator=seeded(0)) * 2 - 1
    noise = torch.randn(2, 3, 8, 8, generator=seeded(1))
    t, landing = ddim.timesteps[10], ddim.timesteps[11]
    x_t = schedule.add_noise(x0, noise, torch.tensor([t, t]))
    expected = schedule.add_noise(x0, noise, torch.tensor([landing, landing]))
    assert_close(ddim.step(noise, t, x_t), expected)


def test_timesteps_are_evenly_spaced_from_the_noisiest_to_0() -> None:
    ddim = DDIMScheduler(NoiseSchedule(betas("linear", 1000)))
    assert ddim.timesteps == list(range(999, -1, -1))
    ddim.set_timesteps(50)
    assert len(ddim.timesteps) == 50 and ddim.timesteps[0] == 999 and ddim.timesteps[-1] == 0
    gaps = {a - b for a, b in zip(ddim.timesteps, ddim.timesteps[1:], strict=False)}
    assert gaps <= {20, 21}
    with pytest.raises(ValueError, match="steps 1001"):
        ddim.set_timesteps(1001)


@torch.no_grad()
def test_ddim_at_50_steps_calls_the_unet_50_times_against_ddpms_1000() -> None:
    model = tiny_model(train_steps=1000)
    calls: list[None] = []
    model.unet.register_forward_hook(lambda *_: calls.append(None))
    sample(model, IDS, DDIMScheduler(model.schedule), 50, guidance_scale=3.0)
    assert len(calls) == 50
    calls.clear()
    sample(model, IDS, DDPMScheduler(model.schedule), 1000, guidance_scale=3.0)
    assert len(calls) == 1000


@torch.no_grad()
def test_guidance_scale_1_is_exactly_the_conditional_prediction() -> None:
    model = tiny_model()
    x, t = noisy_inputs()
    conditional = model.predict_noise(x, t, IDS)
    assert torch.equal(model.guided_noise(x, t, IDS, 1.0), conditional)
    assert torch.equal(model.guided_noise(x, t, IDS, 1.0, negative_ids=OTHER_IDS), conditional)


@torch.no_grad()
def test_guidance_extrapolates_from_the_null_prediction_or_the_negative_prompts() -> None:
    model = tiny_model()
    x, t = noisy_inputs()
    caption, null, negative = (model.predict_noise(x, t, ids) for ids in (IDS, None, OTHER_IDS))
    guided = model.guided_noise(x, t, IDS, 4.0)
    assert_close(guided, null + 4.0 * (caption - null))
    with_negative = model.guided_noise(x, t, IDS, 4.0, negative_ids=OTHER_IDS)
    assert_close(with_negative, negative + 4.0 * (caption - negative))
    assert not torch.allclose(with_negative, guided)


@torch.no_grad()
def test_a_seed_fixes_the_samples_and_another_seed_changes_them() -> None:
    model = tiny_model()

    def draw(seed: int) -> Tensor:
        scheduler = DDIMScheduler(model.schedule, eta=0.5)
        return sample(model, IDS, scheduler, 10, 3.0, generator=seeded(seed))

    first = draw(0)
    assert first.shape == (2, 3, 8, 8) and first.abs().max() <= 1
    assert torch.equal(draw(0), first)
    assert not torch.allclose(draw(1), first)


def test_cosine_alphas_cumprod_fall_from_about_1_to_about_0() -> None:
    schedule = NoiseSchedule(betas("cosine", 1000))
    abar = schedule.alphas_cumprod
    assert abar[0] > 0.999 and abar[-1] < 1e-4
    assert torch.all(abar.diff() < 0)
    assert schedule.betas.max() <= 0.999


def test_linear_betas_run_from_1e_4_to_0_02_scaled_by_1000_over_the_steps() -> None:
    for steps, scale in ((1000, 1.0), (500, 2.0)):
        linear = betas("linear", steps)
        assert len(linear) == steps
        assert_close(linear[[0, -1]], torch.tensor([1e-4, 0.02], dtype=torch.float64) * scale)


def test_ema_moves_the_shadow_by_the_decay_rule_and_copy_to_loads_it() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.9, warmup=False)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    ema.update(model)
    for name, p in model.named_parameters():  # two steps toward fixed weights: 0.9² of the gap left
        assert_close(ema.shadow[name], p.detach() - 0.81 * (p.detach() - start[name]))
    restored = EMA(nn.Linear(3, 2), decay=0.9)
    restored.load_state_dict(ema.state_dict())
    restored.copy_to(model)
    for name, p in model.named_parameters():
        assert torch.equal(p, ema.shadow[name])


def test_ema_warmup_follows_the_weights_early_and_reaches_the_decay_later() -> None:
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.999)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # d = min(0.999, 1/10): 90 % of the way at once
    for name, p in model.named_parameters():
        assert_close(ema.shadow[name], p.detach() - 0.1 * (p.detach() - start[name]))
    for _ in range(199):
        ema.update(model)
    kept = 0.1 * math.prod((1 + n) / (10 + n) for n in range(1, 200))
    for name, p in model.named_parameters():  # far less than the 0.999**200 = 82 % without
        assert_close(ema.shadow[name], p.detach() - kept * (p.detach() - start[name]))
    assert kept < 1e-6
