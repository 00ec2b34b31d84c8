"""Sampling time: DDPM over all 1000 timesteps against DDIM over 50, for the registry's
"diffusion-tiny" model, a batch of 4 captions with classifier-free guidance (one UNet pass
over the doubled batch per step). Figures, never assertions.

    python -m tests.perf.bench_sampling
"""

from __future__ import annotations

import time
from typing import cast

import torch
from rich.console import Console
from rich.table import Table

from weft.models import registry
from weft.models.diffusion import DDIMScheduler, DDPMScheduler, Scheduler, TextToImage, sample

BATCH = 4
GUIDANCE = 5.0
console = Console()


def seconds(model: TextToImage, ids: torch.Tensor, scheduler: Scheduler, steps: int) -> float:
    start = time.perf_counter()
    sample(model, ids, scheduler, steps, GUIDANCE, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def main() -> None:
    torch.manual_seed(0)
    model = cast(TextToImage, registry.build("diffusion-tiny")).eval()
    text = model.config.text
    ids = torch.randint(3, text.vocab_size, (BATCH, text.context_length))  # no padding
    seconds(model, ids, DDIMScheduler(model.schedule), 5)  # warm-up
    samplers = [
        ("DDPM", model.schedule.steps, DDPMScheduler(model.schedule)),
        ("DDIM, eta 0", 50, DDIMScheduler(model.schedule)),
    ]
    runs = [(name, n, seconds(model, ids, scheduler, n)) for name, n, scheduler in samplers]
    table = Table(
        title=f"diffusion-tiny: {BATCH} samples of {model.config.unet.image_size}x"
        f"{model.config.unet.image_size}, guidance {GUIDANCE}, {torch.get_num_threads()} threads"
    )
    for column in ("sampler", "steps", "seconds", "ms / step"):
        table.add_column(column, justify="left" if column == "sampler" else "right")
    for name, steps, elapsed in runs:
        table.add_row(name, f"{steps}", f"{elapsed:.2f}", f"{1000 * elapsed / steps:.1f}")
    console.print(table)
    console.print(f"DDPM / DDIM time: {runs[0][2] / runs[1][2]:.1f}x")


if __name__ == "__main__":
    main()
