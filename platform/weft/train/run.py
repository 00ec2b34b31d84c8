"""A training job end to end, from the driver: tokenizer, datasets, MLflow run, Ray Train's
`TorchTrainer`, and the final model logged to MLflow.

The same spec runs on the local Ray or a cluster (`RAY_ADDRESS`), from local or S3 data, with
the run's checkpoints in `output` (local or S3). Starting a spec whose run already has
checkpoints resumes it from the newest one that loads (`loop.py`). What would fail only once
workers run (workers the local Ray has no room for, data too thin to feed them) is refused
first, naming the spec's field.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import ray
import ray.train
from ray.data import Dataset
from ray.train.torch import TorchConfig, TorchTrainer

from weft import cluster, storage
from weft.curate.dataset import content_hash, version_uri
from weft.inspection import GoldSet
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.registry.artifacts import SOURCE_RUN, source_run_file
from weft.registry.pyfunc import log_model
from weft.specs import SpecError, spec_hash
from weft.tracking import generation_tags, log_dataset, tracking_uri, use_experiment
from weft.train import data
from weft.train.loop import MODEL_DIR, train_loop
from weft.train.sharded import DEEPSPEED_ENV
from weft.train.spec import TrainSpec
from weft.train.tasks import load_judge

log = logging.getLogger(__name__)
USER_ERRORS = (SpecError, storage.StorageError)


@dataclass(frozen=True)
class TrainResult:
    run_id: str | None
    checkpoint: str  # the last checkpoint's URI
    model: str  # the final model, `<output>/<name>/model`: loads with registry.load
    metrics: dict[str, float]


def _flat(prefix: str, value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {
            k: v for key, sub in value.items() for k, v in _flat(f"{prefix}{key}.", sub).items()
        }
    return {prefix.rstrip("."): json.dumps(value) if isinstance(value, list) else str(value)}


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train(
    spec: TrainSpec,
    tags: dict[str, str] | None = None,
    callbacks: Sequence[Any] = (),
    *,
    end_failed_run: bool = True,
) -> TrainResult:
    """Run (or resume) the training job; returns its MLflow run and last checkpoint. `tags`
    go on the MLflow run; `callbacks` are Ray Train's (a sweep's trial passes Tune's). A
    run whose training raises ends as failed, unless `end_failed_run` is off: a sweep's
    trial leaves it to the sweep, which knows whether Tune stopped the trial or it failed
    (a stopped trial's training unwinds while the sweep ends, and would race it)."""
    kind, model_config = registry.config(spec.model.name, spec.model.overrides)
    text = model_config.text  # type: ignore[attr-defined]
    size = registry.image_size(model_config)
    spec = _checked(spec, kind)
    train_rows, val_rows = _on_cluster(spec)
    tokenizer = Tokenizer.train(
        data.captions(train_rows), vocab_size=text.vocab_size, lowercase=text.lowercase
    )
    datasets = {
        "train": data.batches(train_rows, tokenizer, spec, size, text.context_length, train=True),
        # small and read at every evaluation: materialised once, before training starts
        "val": data.batches(
            val_rows, tokenizer, spec, size, text.context_length, train=False
        ).materialize(),
    }
    out = storage.resolve(spec.output, spec.storage)
    run_id = None
    if spec.mlflow.enabled:
        run = mlflow.start_run(
            experiment_id=use_experiment(spec.mlflow.experiment), run_name=spec.name
        )
        run_id = run.info.run_id
        # the version published now and that version's hash: a run publishing meanwhile
        # cannot give the tag one version and the dataset input another
        data_version = version_uri(spec.data.uri, spec.storage)
        dataset_hash = content_hash(data_version, spec.storage)
        mlflow.log_params(_flat("", spec.model_dump(mode="json")))
        mlflow.set_tags(
            {
                "weft.stage": "train",
                "weft.model.kind": kind,
                "weft.spec_hash": spec_hash(spec),
                "weft.dataset.uri": spec.data.uri,
                "weft.dataset.content_hash": dataset_hash,
                "weft.git_commit": _git_commit(),
                **generation_tags(model_config),
                **(tags or {}),
            }
        )
        mlflow.log_dict(spec.model_dump(mode="json"), "spec.yaml")
        name = spec.data.uri.rstrip("/").rsplit("/", 1)[-1]
        log_dataset(data_version, dataset_hash, name, "training")
    worker_env = {}
    if spec.strategy.name == "deepspeed" and not spec.workers.gpu:
        worker_env = {"env_vars": DEEPSPEED_ENV}
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            # the model itself: its secrets pickle whole to the workers and read
            # `**********` where Ray shows the config (the dashboard's Train runs)
            "spec": spec,
            "tokenizer": tokenizer.to_str(),
            "mlflow": {"run_id": run_id, "tracking_uri": tracking_uri()} if run_id else None,
        },
        torch_config=TorchConfig(backend="nccl" if spec.workers.gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=spec.workers.count,
            use_gpu=spec.workers.gpu,
            resources_per_worker={"CPU": spec.workers.cpus},
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
        run_config=ray.train.RunConfig(  # type: ignore[call-arg]
            name=spec.name,
            storage_path=out.path,
            storage_filesystem=out.fs,
            failure_config=ray.train.FailureConfig(max_failures=spec.checkpoint.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
            worker_runtime_env=worker_env or None,
            callbacks=list(callbacks),
            logging_config=ray.train.LoggingConfig(log_level=cluster.train_log_level()),
        ),
    )
    try:
        result = _fit(trainer)
    except BaseException:
        if run_id and end_failed_run:
            mlflow.end_run("FAILED")
        raise
    if run_id:
        mlflow.end_run()
    if result.checkpoint is None:
        raise RuntimeError(f"training {spec.name} ended without a checkpoint")
    last = out.join(spec.name, Path(result.checkpoint.path).name)  # in the run's storage
    model = storage.copy_dir(last.join(MODEL_DIR), out.join(spec.name, MODEL_DIR))
    if run_id:
        with mlflow.start_run(run_id=run_id), result.checkpoint.as_directory() as directory:
            log_model(Path(directory) / MODEL_DIR, spec.name)
        storage.write_bytes(model.join(SOURCE_RUN), source_run_file(run_id))
    log.info("train done name=%s run_id=%s model=%s", spec.name, run_id, model.uri)
    return TrainResult(run_id, last.uri, model.uri, dict(result.metrics or {}))


def _checked(spec: TrainSpec, kind: str) -> TrainSpec:
    """Refuse a CLIP judge that does not load, a calibration set that is not a gold set and
    an `output` that cannot be written, which would fail only after training started; the
    spec with its paths absolute."""
    if kind == "diffusion" and spec.eval.clip:
        load_judge(spec.eval.clip, spec.storage)
    if kind == "inspector" and spec.eval.calibration:
        try:
            GoldSet.read(spec.eval.calibration)
        except SpecError as err:
            raise SpecError(f"eval.calibration: {err}") from None
    storage.ensure_writable(storage.resolve(spec.output, spec.storage))
    return absolute_paths(spec)


def absolute_paths(spec: TrainSpec) -> TrainSpec:
    """The spec with its local paths (data, output, CLIP judge, calibration set) made
    absolute: Ray runs its workers, and Tune its trials, in working directories of their
    own."""

    def absolute(uri: str) -> str:
        return storage.resolve(uri, spec.storage).uri

    calibration = spec.eval.calibration

    return spec.model_copy(
        update={
            "data": spec.data.model_copy(update={"uri": absolute(spec.data.uri)}),
            "output": absolute(spec.output),
            "eval": spec.eval.model_copy(
                update={
                    "clip": absolute(spec.eval.clip) if spec.eval.clip else None,
                    "calibration": calibration and str(Path(calibration).resolve()),
                }
            ),
        }
    )


def _on_cluster(spec: TrainSpec) -> tuple[Dataset, Dataset]:
    """Connect to Ray; refuse workers it cannot place and data that cannot feed them, before
    any worker starts; the (train, held-out) pairs."""
    cluster.connect()
    _check_placement(spec)
    workers = spec.workers
    cluster.check_room(
        "workers.cpus",
        f"{workers.count} workers of {workers.cpus:g} CPU",
        workers.count * workers.cpus,
        "lower workers.cpus or workers.count",
    )
    _warn_if_data_starves(spec)
    pairs = data.pairs(spec.data, spec.storage)
    data.check_enough(spec, *pairs)
    return pairs


def _fit(trainer: TorchTrainer) -> ray.train.Result:
    """Ray Train's result; bad input found on a worker raises as its own error."""
    try:
        return trainer.fit()
    except ray.train.WorkerGroupError as err:
        found = [e for e in err.worker_failures.values() if isinstance(e, USER_ERRORS)]
        if found:
            raise found[0] from None
        raise


def _check_placement(spec: TrainSpec) -> None:
    """Refuse workers that the local Ray has no room for: Ray Train would retry its
    worker-group start every 60 s (`RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S`) forever.
    A cluster joined at `RAY_ADDRESS` may autoscale, which its driver cannot see (Ray refuses
    by itself where the autoscaler publishes its limits), so there they wait for nodes."""
    if os.environ.get("RAY_ADDRESS"):
        return
    workers = spec.workers
    bundle = {"CPU": workers.cpus} | ({"GPU": 1.0} if workers.gpu else {})
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    # Ray Train places one bundle per worker, never across nodes
    room = sum(min(int(node.get(k, 0) / v + 1e-9) for k, v in bundle.items()) for node in nodes)
    if room < workers.count:
        each = " and ".join(f"{v:g} {k}" for k, v in bundle.items())
        has = " and ".join(f"{sum(n.get(k, 0) for n in nodes):g} {k}" for k in bundle)
        raise SpecError(
            f"workers.count: {workers.count} workers of {each} each (workers.cpus, "
            f"workers.gpu) do not fit the local Ray, which has {has}: room for {room}; "
            "lower workers.count or workers.cpus"
        )


def _warn_if_data_starves(spec: TrainSpec) -> None:
    """Ray Data gets the CPUs the workers leave; with less than a whole one it ran one task
    at a time here, and each epoch's first batch came 4 s late (0.5 s with one CPU left)."""
    total = float(ray.cluster_resources().get("CPU", 0))
    left = total - spec.workers.count * spec.workers.cpus
    if not spec.workers.gpu and left < 1:
        log.warning(
            "train %s: the workers take %g of %g CPUs, leaving %g to Ray Data's preprocessing: "
            "it will be slow; lower workers.cpus or workers.count",
            spec.name,
            spec.workers.count * spec.workers.cpus,
            total,
            max(left, 0),
        )
