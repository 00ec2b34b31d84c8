"""Shared fixtures: one Ray instance per session, a real S3 server (moto) on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.s3server import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 server on 127.0.0.1 for the whole session, stopped at its end."""
    with running_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole session (2 CPUs), on 127.0.0.1 only. With its dashboard:
    Ray Train frees the CPUs of a trainer that Tune stopped only through its state API."""
    import ray

    from weft import cluster

    cluster.connect(num_cpus=2, dashboard=True)  # as the product starts it
    yield
    ray.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _weft_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """MLflow (SQLite) and other local state go to a session temp folder, never the repo;
    a cluster or tracking server from the caller's environment is not used by tests."""
    saved = {k: os.environ.get(k) for k in ("WEFT_HOME", "MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    os.environ["WEFT_HOME"] = str(tmp_path_factory.mktemp("weft-home"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("RAY_ADDRESS", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
