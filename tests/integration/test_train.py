"""`train` end to end: curated demo data streamed by Ray Data into Ray Train, tracked in
MLflow (SQLite), checkpoints that load, and a run that survives a killed worker."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from ray._private import state as ray_state

from tests.mlflowserver import running_mlflow_server
from tests.s3server import S3Server
from weft import storage
from weft.demo.corpus import SHAPES
from weft.models import registry
from weft.models.clip import CLIP
from weft.models.tokenizer import Tokenizer
from weft.registry.promote import promote
from weft.registry.spec import PromoteSpec
from weft.specs import parse_spec
from weft.train.run import TrainResult, train
from weft.train.spec import TrainSpec

pytestmark = pytest.mark.integration


def clip_spec(data: str, out: Path, **overrides: Any) -> TrainSpec:
    body: dict[str, Any] = {
        "name": "it-clip",
        "model": "clip-tiny",
        "data": {"uri": data, "val_percent": 10},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 4, "batch_size": 8},
        "workers": {"count": 2, "cpus": 0.5},
        "checkpoint": {"every_steps": 2},
        "eval": {"every_steps": 2, "batches": 1, "classes": list(SHAPES)},
        "output": str(out),
    }
    return parse_spec(TrainSpec, body | overrides)


def history(run_id: str, key: str) -> list[int]:
    return [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, key)]


def test_clip_trains_on_ddp_and_the_mlflow_run_holds_everything(
    curated: tuple[str, str], tmp_path: Path
) -> None:
    data, content_hash = curated
    result = train(clip_spec(data, tmp_path))
    assert result.metrics["step"] == 4 and result.run_id
    assert {"loss", "val/loss", "val/zero_shot_top1"} <= set(result.metrics)  # rank 0's latest
    model, tokenizer = registry.load(result.model)  # the final model, beside the checkpoints
    assert result.model == str(tmp_path / "it-clip" / "model")
    assert isinstance(model, CLIP) and tokenizer is not None
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["weft.dataset.content_hash"] == content_hash
    assert run.data.tags["weft.dataset.uri"] == data
    assert run.data.params["strategy.name"] == "ddp"
    for key in ("loss", "lr", "samples_per_s", "temperature"):
        assert history(result.run_id, key), key
    metrics = run.data.metrics
    assert "val/image_to_text/recall_at_10" in metrics and "val/zero_shot_top1" in metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "eval")}
    assert any(path.endswith("attention.png") for path in artifacts)
    served = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    embeddings = served.predict(pd.DataFrame({"text": ["a red circle", "a blue square"]}))
    assert np.stack(embeddings["embedding"].to_list()).shape == (2, model.config.embed_dim)


def _checkpointed(run_dir: Path) -> bool:
    """Whether Ray Train has registered a checkpoint of the run (not just written its files)."""
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    try:
        return json.loads(snapshot.read_text()).get("latest_checkpoint_result") is not None
    except (OSError, ValueError):
        return False


def _kill_a_worker_after_the_first_checkpoint(run_dir: Path, killed: list[int]) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and not _checkpointed(run_dir):
        time.sleep(0.1)
    # the GCS's actor table (the public state API would go through the dashboard)
    workers = [
        a["Pid"]
        for a in ray_state.actors().values()
        if a["ActorClassName"] == "RayTrainWorker" and a["State"] == "ALIVE"
    ]
    if workers:
        os.kill(workers[-1], signal.SIGKILL)
        killed.append(workers[-1])


def test_a_killed_worker_resumes_from_the_last_checkpoint_with_continuous_steps(
    curated: tuple[str, str], tmp_path: Path
) -> None:
    data, _ = curated
    spec = clip_spec(
        data,
        tmp_path,
        name="it-resume",
        optim={"lr": 1e-3, "warmup_steps": 1, "max_steps": 40, "batch_size": 8},
        checkpoint={"every_steps": 5, "max_failures": 2},
        eval={"every_steps": 40, "batches": 1},
    )
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_a_worker_after_the_first_checkpoint, args=(tmp_path / "it-resume", killed)
    )
    killer.start()
    result: TrainResult = train(spec)
    killer.join()
    assert killed, "no worker was killed"
    assert result.metrics["step"] == 40
    assert result.run_id
    steps = history(result.run_id, "loss")  # logged at step 1 and every 10th
    assert set(steps) == {1, 10, 20, 30, 40}
    assert steps.count(1) == 1  # resumed from a checkpoint, never from the start


def test_a_run_reads_s3_data_checkpoints_to_s3_tracks_to_an_mlflow_server_and_is_promoted(
    curated: tuple[str, str],
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, content_hash = curated
    bucket = s3_server.new_bucket()
    s3 = s3_server.storage()
    storage.copy_dir(storage.resolve(data), storage.resolve(f"s3://{bucket}/curated", s3))
    spec = clip_spec(
        f"s3://{bucket}/curated",
        tmp_path,
        name="it-remote",
        output=f"s3://{bucket}/runs",
        storage=s3.model_dump(),
        optim={"lr": 1e-3, "warmup_steps": 1, "max_steps": 2, "batch_size": 8},
        workers={"count": 1, "cpus": 1},
        checkpoint={"every_steps": 2},
        eval={"every_steps": 2, "batches": 1},
    )
    with running_mlflow_server(tmp_path) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        result = train(spec)
        assert result.run_id and result.model == f"s3://{bucket}/runs/it-remote/model"
        assert result.checkpoint.startswith(f"s3://{bucket}/runs/it-remote/checkpoint_")
        client = mlflow.MlflowClient(uri)
        run = client.get_run(result.run_id)
        assert run.data.tags["weft.dataset.content_hash"] == content_hash
        assert "val/loss" in run.data.metrics and "loss" in run.data.metrics
        served = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
        assert served.predict(pd.DataFrame({"text": ["a red circle"]})).shape[0] == 1
        gate = {"model": "it-remote-clip", "gate": {"metrics": {"val/loss": {"better": "lower"}}}}
        assert promote(parse_spec(PromoteSpec, gate), result.run_id).passed  # on the server
        by_alias = mlflow.pyfunc.load_model("models:/it-remote-clip@champion")
        assert by_alias.predict(pd.DataFrame({"text": ["a red circle"]})).shape[0] == 1
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert "runs/it-remote/model/model.safetensors" in keys
    with tempfile.TemporaryDirectory() as tmp:
        storage.copy_dir(storage.resolve(result.model, s3), storage.resolve(tmp))
        model, _ = registry.load(tmp)
    assert isinstance(model, CLIP)


def test_diffusion_samples_are_scored_by_a_clip_given_by_a_relative_path(
    curated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = curated
    monkeypatch.chdir(tmp_path)  # the workers' working directory is not the driver's
    registry.save(registry.build("clip-tiny"), tmp_path / "judge", Tokenizer.train(["a b"], 300))
    body: dict[str, Any] = {
        "name": "it-diffusion",
        "model": "diffusion-tiny",
        "data": {"uri": data, "val_percent": 10},
        "optim": {"warmup_steps": 1, "max_steps": 2, "batch_size": 8},
        "workers": {"count": 1, "cpus": 1},
        "eval": {"batches": 1, "cfg_scales": [1, 3], "sample_steps": 2, "samples": 4},
        "output": str(tmp_path / "runs"),
        "mlflow": {"enabled": False},
    }
    spec = parse_spec(TrainSpec, body | {"eval": body["eval"] | {"clip": "judge"}})
    metrics = train(spec).metrics
    for name in ("clip_score_real", "clip_score_cfg1", "clip_score_cfg3", "frechet_cfg3"):
        assert f"val/{name}" in metrics, name
