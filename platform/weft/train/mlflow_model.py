"""A trained Weft model as an MLflow model: the model directory (config, weights, tokenizer)
is its artifact, and `mlflow.pyfunc.load_model(uri)` loads it back in one call.

`predict` takes a DataFrame: CLIP embeds its `text` column, the captioner captions its
`image` column (encoded image bytes), the diffusion model draws its `text` column (PNG bytes).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema

from weft.models import registry
from weft.models.captioner import Captioner
from weft.models.clip import CLIP
from weft.models.diffusion import DDIMScheduler, TextToImage, sample
from weft.train.data import image_array

ARTIFACT = "weft_model"
SIGNATURES = {
    "clip": (Schema([ColSpec("string", "text")]), Schema([ColSpec("double", "embedding")])),
    "captioner": (Schema([ColSpec("binary", "image")]), Schema([ColSpec("string", "caption")])),
    "diffusion": (Schema([ColSpec("string", "text")]), Schema([ColSpec("binary", "image")])),
}


class WeftModel(PythonModel):
    def load_context(self, context: Any) -> None:
        self.model, tokenizer = registry.load(context.artifacts[ARTIFACT])
        if tokenizer is None:
            raise ValueError(f"{context.artifacts[ARTIFACT]} has no tokenizer")
        self.tokenizer = tokenizer

    @torch.no_grad()
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        m, t = self.model, self.tokenizer
        if isinstance(m, CLIP):
            ids = t.encode(model_input["text"].tolist(), m.config.text.context_length)
            return m.encode_text(ids).numpy()
        if isinstance(m, Captioner):
            size = m.config.vision.image_size
            images = torch.from_numpy(
                np.stack([image_array(b, size, None) for b in model_input["image"]])
            )
            found = m.generate(
                images, t.bos_id, t.eos_id, m.config.text.context_length, beam_size=3
            )
            return pd.DataFrame({"caption": [t.decode(ids) for ids in found]})
        assert isinstance(m, TextToImage)
        ids = t.encode(model_input["text"].tolist(), m.config.text.context_length)
        out = sample(
            m, ids, DDIMScheduler(m.schedule), 50, 3.0, generator=torch.Generator().manual_seed(0)
        )
        return pd.DataFrame({"image": [_png(x) for x in out]})


def _png(image: torch.Tensor) -> bytes:
    from PIL import Image

    pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def log_model(directory: Path, name: str) -> None:
    """Log the model in `directory` to the active MLflow run as `model`."""
    kind = registry.load_kind(directory)
    inputs, outputs = SIGNATURES[kind]
    mlflow.pyfunc.log_model(
        name="model",
        python_model=WeftModel(),
        artifacts={ARTIFACT: str(directory)},
        signature=ModelSignature(inputs=inputs, outputs=outputs),
        pip_requirements=["torch==2.13.0", "tokenizers", "safetensors", "pydantic>=2", "pillow"],
        code_paths=[str(Path(__file__).parents[1])],
    )
