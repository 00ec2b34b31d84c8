"""The one interface the training loop sees whatever the strategy, `Prepared`; its torch base
and DDP; and what every strategy shares: AdamW, the learning-rate schedule, the worker's rank.

Per micro-batch the loop calls `backward(loss)` then `step()`; the optimiser steps at the
gradient-accumulation boundary. Every rank calls `save`, `load` and `full_state_dict`
(they may be collectives).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from weft.train.spec import OptimSpec, TrainSpec

OPTIMIZER_FILE = "optimizer.pt"


def lr_lambda(spec: OptimSpec) -> Callable[[int], float]:
    """Linear warm-up to the peak, then cosine decay to `min_lr_ratio` of it at `max_steps`."""

    def factor(step: int) -> float:
        if step < spec.warmup_steps:
            return (step + 1) / spec.warmup_steps
        progress = min(1.0, (step - spec.warmup_steps) / max(1, spec.max_steps - spec.warmup_steps))
        return spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    return factor


def rank() -> int:
    """This worker's rank in the Ray Train run."""
    import ray.train

    return int(ray.train.get_context().get_world_rank())


def adamw(model: nn.Module, spec: OptimSpec) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        model.parameters(), lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay
    )


class Prepared(ABC):
    """A model placed for training, with its optimiser and learning-rate schedule."""

    module: nn.Module  # what the loop calls: the wrapped model
    model: nn.Module  # the bare model: config, evaluation, export

    def __init__(self, spec: TrainSpec) -> None:
        self.spec = spec
        self.micro_steps = 0

    def autocast(self) -> AbstractContextManager[object]:
        """The forward pass's precision context (bf16 autocast where the strategy needs it)."""
        return nullcontext()

    @property
    def boundary(self) -> bool:
        """Whether the micro-batch just done completes a gradient-accumulation group."""
        return self.micro_steps % self.spec.optim.grad_accum == 0

    @abstractmethod
    def backward(self, loss: Tensor) -> None: ...

    @abstractmethod
    def step(self) -> bool:
        """Count a micro-batch; at the boundary clip, step and zero. True when it stepped."""

    @property
    @abstractmethod
    def lr(self) -> float: ...

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write what a resumed run needs (weights, optimiser, schedule) into `directory`."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore what `save` wrote."""

    @abstractmethod
    def full_state_dict(self) -> dict[str, Tensor] | None:
        """The whole model's weights on rank 0 (None on the others), for export."""


class TorchPrepared(Prepared):
    """Shared by DDP and FSDP2: a torch optimiser and LambdaLR over the wrapped module."""

    def __init__(self, spec: TrainSpec, model: nn.Module, module: nn.Module) -> None:
        super().__init__(spec)
        self.model, self.module = model, module
        self.optimizer = adamw(module, spec.optim)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(spec.optim))

    def backward(self, loss: Tensor) -> None:
        (loss / self.spec.optim.grad_accum).backward()

    def step(self) -> bool:
        self.micro_steps += 1
        if not self.boundary:
            return False
        if self.spec.optim.grad_clip:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.spec.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    @property
    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])


class DDPPrepared(TorchPrepared):
    """DistributedDataParallel through Ray Train's `prepare_model` (device placement too)."""

    def __init__(self, spec: TrainSpec, model: nn.Module) -> None:
        import ray.train.torch

        super().__init__(spec, model, ray.train.torch.prepare_model(model))

    def autocast(self) -> AbstractContextManager[object]:
        if self.spec.precision == "bf16":
            device = next(self.model.parameters()).device.type
            return torch.autocast(device_type=device, dtype=torch.bfloat16)
        return nullcontext()

    def save(self, directory: Path) -> None:
        if rank() == 0:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "micro_steps": self.micro_steps,
            }
            torch.save(state, directory / OPTIMIZER_FILE)

    def load(self, directory: Path) -> None:
        state = torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.micro_steps = state["micro_steps"]

    def full_state_dict(self) -> dict[str, Tensor] | None:
        return self.model.state_dict() if rank() == 0 else None
