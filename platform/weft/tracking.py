"""MLflow set-up shared by every stage: `MLFLOW_TRACKING_URI`, else SQLite in the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow


def data_dir() -> Path:
    """Where Weft keeps local state (MLflow's SQLite store, demo data): `WEFT_HOME` or `.weft`."""
    path = Path(os.environ.get("WEFT_HOME", ".weft")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else the SQLite store in the data dir."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


def ui_command() -> str:
    """The command that opens the MLflow UI on the tracking store in use."""
    uri = tracking_uri()
    if uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1"
    return f"open {uri}"


def use_experiment(name: str) -> str:
    """Point MLflow at the tracking store and return the id of experiment `name` (created if new).

    With the default SQLite store, artifacts go to `<data dir>/mlartifacts`.
    """
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        location = (data_dir() / "mlartifacts" / name).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)
