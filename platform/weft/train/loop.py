"""The per-worker training loop that Ray Train runs, the same for every model kind: the task
object says what differs (DESIGN habit 5), the strategy how the model is spread.

A checkpoint holds the strategy's resumable state (weights, optimiser, schedule), the
exported model (`model/`: config, weights and tokenizer, loadable with one call) and
`state.json` (step, epoch, batches read in that epoch). A restarted run resumes from the
latest one; the data position is restored by skipping the batches already read in that
epoch (with `data.shuffle: global` the resumed epoch's order is drawn anew, so as many rows
are skipped, not the same ones). A checkpoint that does not load (a truncated or corrupted
file) is skipped for the one before it, here on the workers: only loading it shows that a
checkpoint is intact.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import ray.train
import torch
import torch.distributed as dist
from pyarrow.fs import S3FileSystem
from torch import Tensor

from weft import metrics
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.storage import StorageError
from weft.train.prepared import Prepared, rank
from weft.train.spec import TrainSpec
from weft.train.strategy import prepare
from weft.train.tasks import TASKS, Batch, Task

STATE_FILE = "state.json"
MODEL_DIR = "model"
log = logging.getLogger(__name__)


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train entry point; `config` holds the spec, the tokenizer and the MLflow run."""
    spec = TrainSpec.model_validate(config["spec"])
    tokenizer = Tokenizer.from_str(config["tokenizer"])
    torch.manual_seed(spec.seed)
    device = ray.train.torch.get_device()
    prepared = prepare(registry.build(spec.model.name, spec.model.overrides).to(device), spec)
    # after `prepare`: state the task keeps beside the weights (an EMA) matches their shards
    task = TASKS[registry.config(spec.model.name)[0]](prepared.model, tokenizer, spec)
    tracker = _Tracker(config.get("mlflow"), spec.name) if rank() == 0 else None
    step, epoch, position = _resume(prepared, device)
    shard = ray.train.get_dataset_shard("train")
    held_out = _held_out_batches(spec, device) if rank() == 0 else []
    window: list[float] = []
    latest: dict[str, float] = {}  # rank 0's last logged metrics, reported with checkpoints
    started, samples = time.perf_counter(), 0
    while step < spec.optim.max_steps:
        batches = shard.iter_torch_batches(
            batch_size=spec.optim.batch_size,
            drop_last=True,
            device=device,
            local_shuffle_buffer_size=4 * spec.optim.batch_size,
            local_shuffle_seed=spec.seed + epoch,
        )
        index = -1
        for index, batch in enumerate(batches):
            if index < position:  # resumed mid-epoch: these were trained on
                continue
            position = index + 1
            with prepared.autocast():
                loss = task.loss(prepared.module, batch)
            prepared.backward(loss)
            window.append(loss.item())
            samples += len(batch["ids"])
            if not prepared.step():
                continue
            step += 1
            extra = task.after_step(prepared.model)
            if tracker and (step % 10 == 0 or step == 1):
                rate = (
                    samples
                    * ray.train.get_context().get_world_size()
                    / (time.perf_counter() - started)
                )
                logged = {"loss": sum(window) / len(window), "lr": prepared.lr}
                logged |= {"samples_per_s": rate, **extra}
                tracker.metrics(logged, step)
                latest |= logged
                window, started, samples = [], time.perf_counter(), 0
            last = step >= spec.optim.max_steps
            if step % spec.eval.every_steps == 0 or last:
                latest |= _evaluate(task, prepared, spec, held_out, tracker, step)
            if step % spec.checkpoint.every_steps == 0 or last:
                _checkpoint(task, prepared, spec, tokenizer, step, epoch, position, latest)
            if last:
                break
            if step % spec.eval.every_steps == 0 or step % spec.checkpoint.every_steps == 0:
                started, samples = time.perf_counter(), 0  # throughput excludes both
        else:
            if index < 0:
                raise ValueError(
                    f"{spec.data.uri}: not one training batch of {spec.optim.batch_size} pairs "
                    "per worker"
                )
            epoch, position = epoch + 1, 0


def _resume(prepared: Prepared, device: torch.device) -> tuple[int, int, int]:
    """(step, epoch, position) of the newest kept checkpoint that every rank restores; zeros
    for a new run. One that does not load (a truncated or corrupted file) is logged by its
    URI and the one before it is tried, all ranks agreeing on each."""
    # the kept checkpoints in the order they were reported (no score attribute): newest last
    checkpoints = [r.checkpoint for r in reversed(ray.train.get_all_reported_checkpoints())]
    for checkpoint in checkpoints:
        state = _restored(prepared, checkpoint)
        if _on_every_rank(state is not None, device):
            assert state is not None
            return state["step"], state["epoch"], state["position"]
    if checkpoints:
        raise StorageError(
            f"{', '.join(_uri(c) for c in checkpoints)}: no checkpoint of the run restores on "
            "every worker (the workers' log says why); delete the run's folder to start over"
        )
    return 0, 0, 0


def _restored(prepared: Prepared, checkpoint: ray.train.Checkpoint) -> dict[str, int] | None:
    """Load `checkpoint` into `prepared`: its `state.json`, or None (logged) if it fails."""
    try:
        with checkpoint.as_directory() as directory:
            prepared.load(Path(directory))
            return dict(json.loads((Path(directory) / STATE_FILE).read_text()))
    except Exception as err:  # whatever a damaged file raises: torch, DCP, JSON, I/O
        log.warning("checkpoint %s does not load, trying an older one: %s", _uri(checkpoint), err)
        return None


def _on_every_rank(ok: bool, device: torch.device) -> bool:
    """Whether `ok` holds on every rank (a collective)."""
    flag = torch.tensor(int(ok), device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def _uri(checkpoint: ray.train.Checkpoint) -> str:
    return ("s3://" if isinstance(checkpoint.filesystem, S3FileSystem) else "") + checkpoint.path


def _held_out_batches(spec: TrainSpec, device: torch.device) -> list[Batch]:
    """The first `eval.batches` held-out batches, kept for every evaluation (rank 0)."""
    out: list[Batch] = []
    for batch in ray.train.get_dataset_shard("val").iter_torch_batches(
        batch_size=spec.optim.batch_size, device=device
    ):
        out.append(batch)
        if len(out) == spec.eval.batches:
            break
    return out


def _plain_copy(spec: TrainSpec, weights: dict[str, Tensor]) -> torch.nn.Module:
    model = registry.build(spec.model.name, spec.model.overrides)
    model.load_state_dict({k: v.detach().cpu() for k, v in weights.items()})
    return model.eval()


def _evaluate(
    task: Task,
    prepared: Prepared,
    spec: TrainSpec,
    held_out: list[Batch],
    tracker: _Tracker | None,
    step: int,
) -> dict[str, float]:
    """Held-out metrics (on rank 0; empty elsewhere), also logged with their images."""
    weights = task.weights(prepared)  # every rank: it may gather shards
    if weights is None or tracker is None or not held_out:
        return {}
    batches = [{k: v.cpu() for k, v in b.items()} for b in held_out]
    metrics, images = task.evaluate(_plain_copy(spec, weights), batches)
    tracker.metrics(metrics, step)
    for name, image in images.items():
        tracker.image(image, f"eval/step{step:06d}_{name}")
    return metrics


def _checkpoint(
    task: Task,
    prepared: Prepared,
    spec: TrainSpec,
    tokenizer: Tokenizer,
    step: int,
    epoch: int,
    position: int,
    metrics: dict[str, float],
) -> None:
    """Every rank writes its part; Ray Train gathers the parts into one checkpoint, with
    rank 0's latest metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        prepared.save(directory)
        weights = task.weights(prepared)
        if weights is not None:
            model = task.exported(_plain_copy(spec, weights))
            registry.save(model, directory / MODEL_DIR, tokenizer)
            state = {"step": step, "epoch": epoch, "position": position}
            (directory / STATE_FILE).write_text(json.dumps(state))
        checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({**metrics, "step": step}, checkpoint=checkpoint)


class _Tracker:
    """MLflow logging from rank 0 into the run the driver opened."""

    def __init__(self, run: dict[str, str] | None, name: str) -> None:
        self.name = name
        self.run_id = run["run_id"] if run else None
        if run:
            mlflow.set_tracking_uri(run["tracking_uri"])
        self.client = mlflow.MlflowClient() if run else None

    def metrics(self, values: dict[str, float], step: int) -> None:
        """To MLflow, and the step, loss and samples/s to Ray's metrics endpoint."""
        metrics.training(self.name, values, step)
        if self.client and self.run_id:
            timestamp = int(time.time() * 1000)
            self.client.log_batch(
                self.run_id,
                metrics=[
                    mlflow.entities.Metric(k, float(v), timestamp, step) for k, v in values.items()
                ],
            )

    def image(self, image: Any, artifact_file: str) -> None:
        if self.client and self.run_id:
            self.client.log_image(self.run_id, image, artifact_file=f"{artifact_file}")
