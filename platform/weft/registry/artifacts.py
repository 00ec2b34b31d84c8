"""Reads the registered model: a Weft model folder (config, weights, tokenizer) fetched from a
folder (local or s3://) or from MLflow (`runs:/<run>/model`, `models:/<name>@<alias>`, as
`weft.registry.pyfunc` logs it), with the MLflow run that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from weft import storage
from weft.models import inference
from weft.specs import SpecError, StorageSpec
from weft.tracking import tracking_uri

# The MLflow artifact of a logged Weft model that holds its model folder.
ARTIFACT = "weft_model"
# In a model folder that Weft wrote beside a run: the MLflow run that made it (its lineage).
SOURCE_RUN = "run.json"


def source_run_file(run_id: str) -> bytes:
    """The content of a model folder's `SOURCE_RUN` file."""
    return json.dumps({"run_id": run_id}).encode()


def fetch_model(uri: str, spec: StorageSpec, into: Path) -> tuple[Path, str | None]:
    """The Weft model folder at `uri` (a folder, local or s3://, or an MLflow model:
    `runs:/<run>/model`, `models:/<name>@<alias>`) copied under `into`, with the MLflow run
    that made it where that is known."""
    if uri.startswith(("runs:/", "models:/")):
        mlflow.set_tracking_uri(tracking_uri())
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into)))
            meta = Model.load(str(local))
            path = meta.flavors["python_function"]["artifacts"][ARTIFACT]["path"]
        except MlflowException as err:
            raise SpecError(f"{uri}: not found in {tracking_uri()} ({err.message})") from None
        except (KeyError, OSError):
            raise SpecError(f"{uri}: not a Weft model (no {ARTIFACT} artifact)") from None
        return local / path, meta.run_id
    try:
        storage.copy_dir(storage.resolve(uri, spec), storage.resolve(str(into)))
    except storage.StorageError as err:
        raise SpecError(str(err)) from None
    found = into / SOURCE_RUN
    return into, json.loads(found.read_text())["run_id"] if found.is_file() else None


P = TypeVar("P", bound=inference.Predictor)


def fetch_predictor(
    uri: str, field: str, spec: StorageSpec, into: Path, kind: type[P]
) -> tuple[P, Path, str | None]:
    """The model at `uri` (as `fetch_model` takes it) loaded as a `kind`, its local folder and
    the run that made it; a SpecError names the spec's `field` that gave the model."""
    try:
        directory, run = fetch_model(uri, spec, into / field)
        predictor = inference.load(directory)
    except SpecError as err:
        raise SpecError(f"{field}: {err}") from None
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise SpecError(f"{field}: {uri} is not a Weft model folder ({err})") from None
    if not isinstance(predictor, kind):
        raise SpecError(f"{field}: {uri} is a {predictor.kind} model, not a {kind.kind} model")
    return predictor, directory, run
