"""MLflow set-up shared by every stage: `MLFLOW_TRACKING_URI`, else SQLite in the data dir."""

from __future__ import annotations

import os
import warnings
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


# Tags of a training run that say where its model came from, and the names `weft promote`
# gives them on the registered version.
LINEAGE_TAGS = {
    "weft.dataset.uri": "dataset_uri",
    "weft.dataset.content_hash": "dataset_content_hash",
    "weft.spec_hash": "spec_hash",
    "weft.git_commit": "git_commit",
    "weft.model.kind": "model_kind",
}
GENERATION_TAG = "weft.generation."


def generation_tags(config: object) -> dict[str, str]:
    """A model config's default generation settings as run tags (none for a kind that does
    not generate)."""
    generation = getattr(config, "generation", None)
    if generation is None:
        return {}
    return {f"{GENERATION_TAG}{k}": str(v) for k, v in generation.model_dump().items()}


def log_dataset(uri: str, content_hash: str, name: str, context: str) -> None:
    """Record the curated dataset at `uri` (a published version) as an input of the active
    run: MLflow's dataset lineage, by content hash, with no row read."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # MLflow registers its local-files source twice, and says so
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(uri)
    dataset = MetaDataset(source, name=name, digest=content_hash)  # type: ignore[abstract]
    mlflow.log_input(dataset, context=context)
