"""Fashion-MNIST (70,000 photographs of clothes in 10 classes, 28x28 grey, from the Debian
package `dataset-fashion-mnist`): the classification bar, a small ViT trained from scratch on
CPU and measured on the 10,000 test images."""

from __future__ import annotations

import gzip
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from weft.models.metrics import topk_accuracy
from weft.models.vit import ViTClassifier, ViTConfig
from weft.quality.figures import Figure
from weft.specs import SpecError

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = [
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]  # fmt: skip
VISION = ViTConfig(image_size=28, patch_size=7, channels=1, width=96, depth=4, heads=4)


def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 28, 28) images in [-1, 1] and (N,) labels of the `train` or `t10k` split."""
    prefix = ROOT / split
    try:
        with gzip.open(f"{prefix}-images-idx3-ubyte.gz") as f:
            pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(f"{prefix}-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
    except FileNotFoundError:
        raise SpecError(
            f"Fashion-MNIST not found under {ROOT}: apt-get install dataset-fashion-mnist"
        ) from None
    images = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1)
    return images, torch.from_numpy(labels.astype(np.int64))


def batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - size + 1, size):
        yield order[start : start + size]


def fit(
    params: list[torch.nn.Parameter],
    step_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    epochs: int,
    batch: int,
    lr: float,
    after_step: Callable[[], None] = lambda: None,
) -> float:
    """AdamW with warm-up and cosine decay over `epochs` of shuffled batches of the `n`
    training rows (`step_loss` takes their indices); samples/s."""
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    total = epochs * (n // batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))),
    )
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        for index in batches(n, batch, generator):
            loss = step_loss(index)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            after_step()
    return total * batch / (time.perf_counter() - start)


@torch.no_grad()
def in_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[i : i + 1000]) for i in range(0, len(x), 1000)])


def classifier_accuracy(epochs: int, seed: int = 0) -> Figure:
    """A ViT classifier trained `epochs` on the training split: its test top-1 accuracy."""
    torch.manual_seed(seed)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    classifier = ViTClassifier(VISION, classes=len(CLASSES))
    fit(
        list(classifier.parameters()),
        lambda i: F.cross_entropy(classifier(train_x[i]), train_y[i]),
        len(train_x),
        epochs,
        batch=128,
        lr=2e-3,
    )
    classifier.eval()
    accuracy = topk_accuracy(in_batches(classifier, test_x), test_y, 1)
    on = f"Fashion-MNIST test, {epochs} epochs"
    return Figure("vit", "accuracy", on, accuracy, 0.70, len(test_y), chance=1 / len(CLASSES))
