"""The server a user would write instead of Weft's app: FastAPI on uvicorn, one process, the
same `weft.models.inference` models and `SearchIndex` called in the handlers. The serving
benchmark runs it beside Weft, on the same machine, with the same client.

    WEFT_PEER_CLIP=<model folder> WEFT_PEER_CAPTIONER=<model folder> \
        WEFT_PEER_INDEX=<index folder> uvicorn tests.perf.peer:app --port PORT
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from weft.models import inference
from weft.serve.search import SearchIndex

P = TypeVar("P", bound=inference.Predictor)


def load(variable: str, kind: type[P]) -> P:
    predictor = inference.load(os.environ[variable])
    assert isinstance(predictor, kind)
    return predictor


clip = load("WEFT_PEER_CLIP", inference.Embedder)
captioner = load("WEFT_PEER_CAPTIONER", inference.CaptionWriter)
index = SearchIndex(Path(os.environ["WEFT_PEER_INDEX"]))
app = FastAPI()


class Image(BaseModel):
    b64: str


class Embed(BaseModel):
    texts: list[str] = []
    images: list[Image] = []


class Search(BaseModel):
    text: str
    k: int = 10


class Caption(BaseModel):
    images: list[Image]


@app.post("/v1/inference/embeddings")
async def embeddings(body: Embed) -> dict[str, Any]:
    data = []
    if body.texts:
        data += [{"input": "text", "embedding": e.tolist()} for e in clip.embed_texts(body.texts)]
    if body.images:
        pictures = [base64.b64decode(i.b64) for i in body.images]
        data += [{"input": "image", "embedding": e.tolist()} for e in clip.embed_images(pictures)]
    return {"dim": clip.dim, "data": data}


@app.post("/v1/retrieval/search")
async def search(body: Search) -> dict[str, Any]:
    vector = np.asarray(clip.embed_texts([body.text])[0], np.float32)
    return {"hits": [vars(h) for h in index.search(vector, body.text, body.k, hybrid=0.3)]}


@app.post("/v1/inference/caption")
async def caption(body: Caption) -> dict[str, Any]:
    return {"captions": captioner.caption([base64.b64decode(i.b64) for i in body.images])}
