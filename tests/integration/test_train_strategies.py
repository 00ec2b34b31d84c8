"""Every strategy on Ray Train, 2 CPU workers over gloo: tiny CLIP trains, checkpoints per
rank into one folder, exports a loadable model, and a second run resumes at the same step
with the same weights."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import ray.train
import torch
import torch.distributed as dist
from ray.train.torch import TorchConfig, TorchTrainer
from torch import Tensor

from weft.models import registry
from weft.models.clip import contrastive_loss
from weft.train.prepared import rank
from weft.train.sharded import DEEPSPEED_ENV
from weft.train.spec import DataSpec, OptimSpec, StrategySpec, TrainSpec
from weft.train.strategy import prepare

pytestmark = pytest.mark.integration

WORKERS, BATCH, STEPS, FIRST = 2, 8, 6, 4  # the first run stops after FIRST of STEPS steps
CASES = {  # case: (strategy, zero_stage, grad_accum)
    "ddp": ("ddp", 2, 1),
    "fsdp": ("fsdp", 2, 2),
    "zero2": ("deepspeed", 2, 2),
    "zero3": ("deepspeed", 3, 1),
}
RANK_FILE = {  # a file each rank writes, named by its rank
    "fsdp": "__{}_0.distcp",
    "deepspeed": "deepspeed/zero_pp_rank_{}_mp_rank_00_optim_states.pt",
}


def pairs(worker: int, accum: int) -> list[tuple[Tensor, Tensor]]:
    """A worker's fixed micro-batches: images (B, 3, 32, 32), ids (B, 16)."""
    generator = torch.Generator().manual_seed(worker)
    return [
        (
            torch.randn(BATCH, 3, 32, 32, generator=generator),
            torch.randint(3, 512, (BATCH, 16), generator=generator),
        )
        for _ in range(accum)
    ]


def train_loop(config: dict[str, Any]) -> None:
    """Train clip-tiny on fixed pairs up to step `until` (from checkpoint `resume` if given);
    save, export the full weights from rank 0, report. Losses are global-batch means."""
    name, stage, accum = CASES[config["case"]]
    spec = TrainSpec(
        name="strategies",
        model="clip-tiny",
        data=DataSpec(uri="unused"),
        optim=OptimSpec(
            lr=2e-3, warmup_steps=1, max_steps=STEPS, batch_size=BATCH, grad_accum=accum
        ),
        strategy=StrategySpec(name=name, zero_stage=stage),
    )
    torch.manual_seed(spec.seed)
    model = registry.build("clip-tiny").to(ray.train.torch.get_device())
    prepared = prepare(model, spec)
    # Ray Train V2 resumes a named run by itself; a new run starts from a given checkpoint
    if (checkpoint := ray.train.get_checkpoint() or config["resume"]) is not None:
        with checkpoint.as_directory() as directory:
            prepared.load(Path(directory))
    start: dict[str, float] = {"micro_steps": prepared.micro_steps, "lr": prepared.lr}
    batches = pairs(rank(), accum)
    losses: list[float] = []
    group: list[float] = []
    while prepared.micro_steps < config["until"] * accum:
        images, ids = batches[prepared.micro_steps % accum]
        with prepared.autocast():
            loss = contrastive_loss(*prepared.module(images, ids))
        prepared.backward(loss)
        total = loss.detach().clone()
        dist.all_reduce(total)
        group.append(total.item() / WORKERS)
        start.setdefault("loss", group[0])  # the loaded weights' loss on micro-batch 0
        if prepared.step():
            losses.append(sum(group) / len(group))
            group = []
    with tempfile.TemporaryDirectory() as tmp:
        prepared.save(Path(tmp))
        weights = prepared.full_state_dict()  # every rank: it may gather shards
        if weights is not None:
            export = registry.build("clip-tiny")
            export.load_state_dict(weights)
            registry.save(export, Path(tmp) / "model")
        metrics = {
            "losses": losses,
            "start": start,
            "micro_steps": prepared.micro_steps,
            "lr": prepared.lr,
        }
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def fit(
    case: str, until: int, storage: Path, resume: ray.train.Checkpoint | None = None
) -> ray.train.Result:
    deepspeed = CASES[case][0] == "deepspeed"
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"case": case, "until": until, "resume": resume},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=WORKERS, resources_per_worker={"CPU": 0.5}
        ),
        run_config=ray.train.RunConfig(
            storage_path=str(storage),
            name=f"{case}-{'resumed' if resume else 'first'}",
            # DS_ACCELERATOR must be set before DeepSpeed is imported in the worker
            worker_runtime_env={"env_vars": DEEPSPEED_ENV} if deepspeed else None,
        ),
    )
    return trainer.fit()


@pytest.mark.parametrize("case", list(CASES))
def test_strategy_trains_checkpoints_exports_and_resumes(
    case: str, tmp_path: Path, ray_session: None
) -> None:
    strategy, _, accum = CASES[case]
    first = fit(case, FIRST, tmp_path)
    assert first.checkpoint is not None and first.metrics is not None
    losses = first.metrics["losses"]
    assert len(losses) == FIRST and losses[-1] < losses[0], losses
    with first.checkpoint.as_directory() as directory:
        if strategy in RANK_FILE:  # both workers' parts landed side by side in one folder
            for r in range(WORKERS):
                assert (Path(directory) / RANK_FILE[strategy].format(r)).is_file()
        model, _ = registry.load(Path(directory) / "model")
    micro_batch = [pairs(r, accum)[0] for r in range(WORKERS)]  # every worker's first
    images = torch.cat([images for images, _ in micro_batch])  # (W * B, 3, 32, 32)
    ids = torch.cat([ids for _, ids in micro_batch])  # (W * B, 16)
    with torch.no_grad():
        image, text, scale = model(images, ids)
    assert image.shape == text.shape == (WORKERS * BATCH, 32)
    assert torch.isfinite(image).all() and torch.isfinite(text).all()

    resumed = fit(case, STEPS, tmp_path, resume=first.checkpoint)
    assert resumed.metrics is not None
    start = resumed.metrics["start"]
    assert start["micro_steps"] == FIRST * accum
    assert start["lr"] == pytest.approx(first.metrics["lr"])
    # the export and the restored state hold the same weights: the same loss on micro-batch 0
    assert start["loss"] == pytest.approx(contrastive_loss(image, text, scale).item(), rel=1e-4)
    assert start["loss"] < losses[0]
    assert resumed.metrics["micro_steps"] == STEPS * accum
    assert len(resumed.metrics["losses"]) == STEPS - FIRST
