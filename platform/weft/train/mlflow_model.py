"""A trained Weft model as an MLflow model: the model directory (config, weights, tokenizer)
is its artifact, and `mlflow.pyfunc.load_model(uri)` loads it back in one call.

`predict` is the model's `weft.models.inference` API over a DataFrame: CLIP embeds each
row's `text` or `image` (encoded bytes) into `embedding`; the captioner captions `image`;
the diffusion model draws `prompt`, away from `negative_prompt`, as PNG bytes in `image`.
The knobs (`beam_size`; `cfg_scale`, `steps`, `seed`) are MLflow params whose defaults come
from the model's config. Each kind's signature and input example are logged with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

from weft import storage
from weft.models import inference
from weft.specs import SpecError, StorageSpec
from weft.tracking import tracking_uri

ARTIFACT = "weft_model"
# In a model folder that Weft wrote beside a run: the MLflow run that made it (its lineage).
SOURCE_RUN = "run.json"
PIP_REQUIREMENTS = ["torch==2.13.0", "tokenizers", "safetensors", "pydantic>=2", "pillow"]


class WeftModel(PythonModel):
    def load_context(self, context: Any) -> None:
        self.predictor = inference.load(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        columns = {k: _plain(v) for k, v in model_input.to_dict("list").items()}
        return pd.DataFrame(self.predictor.predict_columns(columns, params or {}))


def _plain(values: list[Any]) -> list[Any]:
    """A column as pandas hands it over, with its missing values (NaN, NA) as None."""
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values]


def signature(predictor: inference.Predictor) -> ModelSignature:
    """The kind's columns, every input optional per row as the predictor allows, and its
    params with the model's defaults."""
    inputs = Schema([_column(name, kind, required=False) for name, kind in predictor.inputs])
    outputs = Schema([_column(name, kind) for name, kind in predictor.outputs])
    params = ParamSchema(
        [ParamSpec(name, _param_type(value), value) for name, value in predictor.params.items()]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _column(name: str, kind: str, required: bool = True) -> ColSpec:
    if kind == "float_array":
        return ColSpec(Array(DataType.float), name, required=required)
    return ColSpec(DataType[kind], name, required=required)


def _param_type(value: Any) -> DataType:
    return {bool: DataType.boolean, int: DataType.long, float: DataType.double}.get(
        type(value), DataType.string
    )


def log_model(directory: Path, name: str) -> None:
    """Log the model in `directory` to the active MLflow run as `model`."""
    predictor = inference.load(directory)
    mlflow.pyfunc.log_model(
        name="model",
        python_model=WeftModel(),
        artifacts={ARTIFACT: str(directory)},
        signature=signature(predictor),
        input_example=pd.DataFrame(predictor.example()),
        pip_requirements=PIP_REQUIREMENTS,
        code_paths=[str(Path(__file__).parents[1])],
    )


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
