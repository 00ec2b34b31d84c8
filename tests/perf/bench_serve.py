"""The HTTP API as its users feel it: P50/P95/P99 latency and requests/s of embeddings (text,
image), search and captions at 1, 8 and 32 concurrent clients on loopback, beside the same
call made in-process (the serving overhead as a ratio). Figures are printed, never asserted.

It serves the registered champions of `make demo` (CLIP and captioner) with a search index of
`--items` synthetic items (clustered unit vectors in the CLIP's space, captions of demo
words) built for that CLIP's version, so search is measured at that size.

    make demo && python -m tests.perf.bench_serve [--items 100000] [--requests 300]
        [--only "embed text"] [--env RAY_SERVE_...=0 ...] [--batching 16:1]

`floor` is `GET /openapi.json`, which the ingress answers without calling a model: the cost
of the HTTP proxy and the ingress replica alone. `--env` sets Ray Serve's environment
variables for the local Ray the benchmark starts, to measure its latency knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from ray.serve.schema import ServeDeploySchema

from weft.models import inference
from weft.registry.artifacts import fetch_model
from weft.registry.versions import resolve
from weft.serve import local
from weft.serve.index import write_bm25
from weft.serve.search import ANN, BM25, ITEMS, MANIFEST, Manifest, SearchIndex, index_location
from weft.specs import StorageSpec

WORDS = [
    "a",
    "the",
    "small",
    "large",
    "red",
    "blue",
    "green",
    "black",
    "white",
    "purple",
    "orange",
    "circle",
    "square",
    "cross",
    "triangle",
    "diamond",
    "on",
    "over",
    "against",
    "background",
    "photo",
    "of",
    "medium",
    "is",
    "and",
]
CLIENTS = (1, 8, 32)


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, format="PNG")
    return out.getvalue()


def synthetic_index(folder: Path, model: str, version: str, dim: int, n: int) -> None:
    """An index folder of `n` items in the CLIP's space, as `weft index` lays it out."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((500, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 500, n)] + 0.4 * rng.standard_normal((n, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    captions = [" ".join(rng.choice(WORDS, 7)) for _ in range(n)]
    thumb = png((128, 128, 128))
    (folder / ITEMS).mkdir(parents=True)
    table = pa.table(
        {
            "id": [f"{i:032x}" for i in range(n)],
            "caption": captions,
            "lang": rng.choice(["en", "de", "fr"], n).tolist(),
            "nsfw_score": np.zeros(n, np.float32),
            "nsfw": np.zeros(n, bool),
            "source_uri": [f"s3://bench/shard-{i // 1000:05d}.tar" for i in range(n)],
            "key": [f"{i:09d}" for i in range(n)],
            "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(), dim),
            "thumbnail": pa.array([thumb] * n, pa.binary()),
        }
    )
    pq.write_table(table, folder / ITEMS / "part-0.parquet")
    ann = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
    ann.hnsw.efConstruction = 80
    ann.add(vectors)
    faiss.write_index(ann, str(folder / ANN))
    write_bm25(captions, folder / BM25)
    manifest = Manifest(model, version, dim, n, "synthetic", "", 16, 64, 0.0)
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest)))


def requests() -> dict[str, tuple[str, dict[str, Any] | None]]:
    image = {"b64": base64.b64encode(png((200, 30, 30))).decode()}
    return {
        "floor": ("/openapi.json", None),
        "embed text": ("/v1/inference/embeddings", {"texts": ["a red circle on blue"]}),
        "embed image": ("/v1/inference/embeddings", {"images": [image]}),
        "search": ("/v1/retrieval/search", {"text": "a red circle on blue", "k": 10}),
        "caption": ("/v1/inference/caption", {"images": [image]}),
    }


async def load(
    url: str, path: str, body: dict[str, Any] | None, clients: int, total: int
) -> np.ndarray:
    """Latencies (ms) of `total` requests (a POST of `body`, or a GET without one) sent by
    `clients` concurrent clients."""
    latencies: list[float] = []
    sent = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < total:
            sent += 1
            start = time.perf_counter()
            answer = await (http.get(path) if body is None else http.post(path, json=body))
            latencies.append((time.perf_counter() - start) * 1e3)
            answer.raise_for_status()

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        for _ in range(20):  # warm: connections, the batch loop, the autoscaler's first look
            await (http.get(path) if body is None else http.post(path, json=body))
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return np.array(latencies)


def in_process(
    clip: Any, captioner: Any, index: SearchIndex, rounds: int = 200
) -> dict[str, float]:
    """P50 ms of the same calls without Serve or HTTP."""
    image = png((200, 30, 30))
    calls = {
        "floor": lambda: None,
        "embed text": lambda: clip.embed_texts(["a red circle on blue"]),
        "embed image": lambda: clip.embed_images([image]),
        "search": lambda: index.search(
            clip.embed_texts(["a red circle on blue"])[0], "a red circle on blue", 10, hybrid=0.3
        ),
        "caption": lambda: captioner.caption([image]),
    }
    out = {}
    for name, call in calls.items():
        call()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
        out[name] = float(np.percentile(times, 50))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--only", nargs="+", help="Endpoints to measure (default: all).")
    parser.add_argument(
        "--env", nargs="+", default=[], metavar="NAME=VALUE", help="For the local Ray."
    )
    parser.add_argument(
        "--batching", default="16:1", metavar="MAX:WAIT_MS", help="The app's args.batching."
    )
    args = parser.parse_args()
    os.environ.update(dict(pair.split("=", 1) for pair in args.env))
    clip_version = resolve("weft-clip@champion")
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for role in ("clip", "captioner"):
            directory, _ = fetch_model(
                f"models:/weft-{role}@champion", StorageSpec(), Path(tmp, role)
            )
            models[role] = inference.load(directory)
        folder = Path(index_location(str(Path(tmp, "index")), clip_version, StorageSpec()).path)
        start = time.perf_counter()
        synthetic_index(
            folder, clip_version.name, clip_version.version, models["clip"].dim, args.items
        )
        print(f"synthetic index: {args.items:,} items in {time.perf_counter() - start:.1f} s")
        baseline = in_process(models["clip"], models["captioner"], SearchIndex(folder))
        app = {
            "name": "bench",
            "route_prefix": "/",
            "import_path": "weft.serve.app:build",
            "args": {
                "diffusion": None,
                "index": str(Path(tmp, "index")),
                "keys": None,
                "batching": dict(
                    zip(("max_size", "wait_ms"), args.batching.split(":"), strict=True)
                ),
            },
            # as serve/weft.yaml: no per-request access log lines shipped to the driver
            "logging_config": {"enable_access_log": False},
        }
        (url,) = local.start(ServeDeploySchema(applications=[app]), local.free_port())
        header = (
            "endpoint",
            "clients",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "in-process",
            "ratio",
        )
        print("\n{:<12} {:>7} {:>8} {:>8} {:>8} {:>7} {:>11} {:>6}".format(*header))
        for name, (path, body) in requests().items():
            if args.only and name not in args.only:
                continue
            for clients in CLIENTS:
                start = time.perf_counter()
                ms = asyncio.run(load(url, path, body, clients, args.requests))
                rate = len(ms) / (time.perf_counter() - start)
                p50, p95, p99 = np.percentile(ms, [50, 95, 99])
                ratio = p50 / baseline[name] if clients == 1 and name != "floor" else np.nan
                print(
                    f"{name:<12} {clients:>7} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {rate:>7.1f} "
                    f"{baseline[name]:>11.2f} {ratio:>5.2f}x"
                )
        local.stop()


if __name__ == "__main__":
    main()
