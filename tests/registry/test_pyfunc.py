"""Every kind of model loads back from MLflow and answers through the pyfunc, with params."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.registry.artifacts import SOURCE_RUN, fetch_model, source_run_file
from weft.registry.pyfunc import log_model
from weft.specs import SpecError, StorageSpec

CAPTIONS = ["a red circle", "a blue square", "a green triangle on white"] * 5


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def logged(tmp_path: Path, name: str) -> str:
    """The runs:/ URI of a freshly saved tiny model of `name`, logged as an MLflow model."""
    torch.manual_seed(0)
    directory = registry.save(
        registry.build(name), tmp_path / name, Tokenizer.train(CAPTIONS, vocab_size=280)
    )
    with mlflow.start_run() as run:
        log_model(directory, name)
    return f"runs:/{run.info.run_id}/model"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_clip_embeds_texts_and_images_through_the_pyfunc(tmp_path: Path, tracking: str) -> None:
    served = mlflow.pyfunc.load_model(logged(tmp_path, "clip-tiny"))
    frame = pd.DataFrame({"text": ["a red circle", None], "image": [None, png((255, 0, 0))]})
    out = served.predict(frame)
    vectors = np.stack(out["embedding"].to_list())
    assert vectors.shape == (2, registry.config("clip-tiny")[1].embed_dim)  # type: ignore[attr-defined]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert served.metadata.get_input_schema().input_names() == ["text", "image"]


def test_captions_take_the_beam_size_as_a_param(tmp_path: Path, tracking: str) -> None:
    served = mlflow.pyfunc.load_model(logged(tmp_path, "captioner-tiny"))
    params = served.metadata.get_params_schema()
    assert {p.name: p.default for p in params.params} == {"beam_size": 3}
    frame = pd.DataFrame({"image": [png((255, 0, 0)), png((0, 0, 255))]})
    assert len(served.predict(frame, params={"beam_size": 1})["caption"]) == 2


def test_generation_takes_negative_prompts_and_its_knobs_as_params(
    tmp_path: Path, tracking: str
) -> None:
    served = mlflow.pyfunc.load_model(logged(tmp_path, "diffusion-tiny"))
    defaults = {p.name: p.default for p in served.metadata.get_params_schema().params}
    assert defaults == {"cfg_scale": 3.0, "steps": 50, "seed": 0}
    frame = pd.DataFrame(
        {"prompt": ["a red circle", "a blue square"], "negative_prompt": ["blue", None]}
    )
    knobs = {"steps": 2, "cfg_scale": 4.0, "seed": 7}
    first = served.predict(frame, params=knobs)["image"].to_list()
    assert first == served.predict(frame, params=knobs)["image"].to_list()
    assert Image.open(io.BytesIO(first[0])).format == "PNG"


def test_a_model_is_fetched_from_a_folder_or_mlflow_with_the_run_that_made_it(
    tmp_path: Path, tracking: str
) -> None:
    uri = logged(tmp_path, "clip-tiny")
    run_id = uri.split("/")[1]
    from_run, made_by = fetch_model(uri, StorageSpec(), tmp_path / "a")
    assert made_by == run_id and registry.load_kind(from_run) == "clip"
    folder = tmp_path / "clip-tiny"
    (folder / SOURCE_RUN).write_bytes(source_run_file(run_id))
    from_folder, made_by = fetch_model(str(folder), StorageSpec(), tmp_path / "b")
    assert made_by == run_id and registry.load_kind(from_folder) == "clip"
    with pytest.raises(SpecError, match="is not a folder"):
        fetch_model(str(tmp_path / "nothing"), StorageSpec(), tmp_path / "c")
    with pytest.raises(SpecError, match="runs:/0123/model: not found"):
        fetch_model("runs:/0123/model", StorageSpec(), tmp_path / "d")
