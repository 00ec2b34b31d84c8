"""Writes the registered model: a trained Weft model folder (config, weights, tokenizer) logged
as an MLflow pyfunc model, its folder the `ARTIFACT`, so `mlflow.pyfunc.load_model(uri)` loads
it back in one call and `weft.registry.artifacts` fetches the folder.

`predict` is the model's `weft.models.inference` API over a DataFrame: CLIP embeds each
row's `text` or `image` (encoded bytes) into `embedding`; the captioner captions `image`;
the diffusion model draws `prompt`, away from `negative_prompt`, as PNG bytes in `image`.
The knobs (`beam_size`; `cfg_scale`, `steps`, `seed`) are MLflow params whose defaults come
from the model's config. Each kind's signature and input example are logged with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

import weft
from weft.models import inference
from weft.registry.artifacts import ARTIFACT

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
        # the whole package travels with the model: `python_model` is pickled by reference
        # (`weft.registry.pyfunc.WeftModel`), which loads where weft is not installed
        code_paths=[str(Path(weft.__file__).parent)],
    )
