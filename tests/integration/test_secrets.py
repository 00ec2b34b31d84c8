"""The S3 secret key in a spec's `storage` block is used, and never written or shown: a
curation and a training run on S3 with MLflow on, then everything they wrote (bucket, MLflow
store, Ray's session folder, output, logs) and what Ray shows of them is searched for it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import mlflow
import pytest
import ray
import yaml
from ray._private import state as ray_state
from ray.data._internal.stats import get_or_create_stats_actor
from ray.train.v2._internal.state.state_actor import get_state_actor

from tests.s3server import S3Server
from weft.curate.pipeline import curate
from weft.curate.spec import CurateSpec
from weft.demo.corpus import generate
from weft.specs import parse_spec
from weft.train.run import train
from weft.train.spec import TrainSpec

pytestmark = pytest.mark.integration


def files_holding(root: Path, secret: bytes) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and secret in p.read_bytes()
    ]


def test_a_planted_secret_key_works_and_is_written_nowhere(
    s3_server: S3Server,
    ray_session: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # the dashboard's Train page: runs with their train_loop_config (off by default)
    monkeypatch.setenv("RAY_TRAIN_ENABLE_STATE_TRACKING", "1")
    secret = s3_server.secret_key  # moto's: random, and the only key it accepts
    s3 = s3_server.storage()
    storage = s3.model_dump()
    bucket = s3_server.new_bucket()
    generate(f"s3://{bucket}/raw", pairs=48, shards=1, documents=4, storage_spec=s3)
    report = curate(
        parse_spec(
            CurateSpec,
            {
                "name": "secrets",
                "inputs": [{"uri": f"s3://{bucket}/raw/pairs", "format": "webdataset"}],
                "output": f"s3://{bucket}/curated",
                "storage": storage,
                "langid": {"enabled": False},
                "nsfw": {"enabled": False},
            },
        )
    )
    assert report.mlflow_run_id and report.counts.kept > 20
    result = train(
        parse_spec(
            TrainSpec,
            {
                "name": "secrets",
                "model": "clip-tiny",
                "data": {"uri": f"s3://{bucket}/curated", "val_percent": 10},
                "optim": {"warmup_steps": 1, "max_steps": 2, "batch_size": 8},
                "workers": {"count": 1, "cpus": 1},
                "checkpoint": {"every_steps": 2},
                "eval": {"every_steps": 2, "batches": 1},
                "output": f"s3://{bucket}/runs",
                "storage": storage,
            },
        )
    )
    assert result.run_id and result.model == f"s3://{bucket}/runs/secrets/model"

    # where the secret was written in clear before: masked now
    for run_id in (report.mlflow_run_id, result.run_id):
        logged = yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{run_id}/spec.yaml"))
        assert logged["storage"]["secret_access_key"] == "**********"
    assert mlflow.get_run(result.run_id).data.params["storage.secret_access_key"] == "**********"

    client = s3_server.client()
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page["Contents"]
    ]
    assert "runs/secrets/model/model.safetensors" in keys
    objects = {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    assert [k for k, body in objects.items() if secret.encode() in body] == []
    weft_home = Path(os.environ["WEFT_HOME"])  # MLflow's SQLite store and artifacts
    assert (weft_home / "mlflow.db").exists() and (weft_home / "mlartifacts").is_dir()
    session = Path(ray._private.worker._global_node.get_session_dir_path())  # logs/ and more
    for root in (weft_home, session, tmp_path):
        assert files_holding(root, secret.encode()) == [], root
    output = capfd.readouterr()
    assert secret not in output.out + output.err
    assert secret not in caplog.text

    # what Ray shows: the Train run (with its config), actors, Ray Data's datasets
    runs = ray.get(get_state_actor().get_train_runs.remote())
    shown = json.dumps([run.model_dump(mode="json") for run in runs.values()])
    assert "secret_access_key=SecretStr('**********')" in shown  # the spec is there, masked
    assert secret not in shown
    assert secret not in str(ray_state.actors())
    assert secret not in str(ray.get(get_or_create_stats_actor().get_datasets.remote()))
