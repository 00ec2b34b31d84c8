"""The HTTP API as its users feel it: P50/P95/P99 latency and requests/s of embeddings (text,
image), search and captions at 1, 8 and 32 concurrent clients on loopback, beside the peer a
user would pick instead: the same models and index in a plain FastAPI app on uvicorn
(`tests/perf/peer.py`), measured in the same run with the same client. Figures are printed,
never asserted.

It serves the registered champions of `make demo` (CLIP and captioner) with a search index of
`--items` synthetic items (clustered unit vectors in the CLIP's space, captions of demo
words) built for that CLIP's version, so search is measured at that size.

    make demo && python -m tests.perf.bench_serve [--items 100000] [--requests 300]
        [--only "embed text"] [--env RAY_SERVE_...=0 ...] [--batching 16:1]
        [--arg clip_in_ingress=false ...]

`floor` is `GET /openapi.json`, which both answer without calling a model: the cost of HTTP
(and for Weft, Serve's proxy and the ingress replica) alone. `--env` sets Ray Serve's
environment variables for the local Ray the benchmark starts, to measure its latency knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
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
from weft.serve import lexical, local
from weft.serve.lexical import Analyzers
from weft.serve.search import ANN, BM25, ITEMS, MANIFEST, Manifest, index_location
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
    langs = rng.choice(["en", "de", "fr"], n).tolist()
    thumb = png((128, 128, 128))
    (folder / ITEMS).mkdir(parents=True)
    table = pa.table(
        {
            "id": [f"{i:032x}" for i in range(n)],
            "caption": captions,
            "lang": langs,
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
    lexical.write(captions, langs, folder / BM25)
    analyzers = Analyzers.PER_LANGUAGE
    manifest = Manifest(model, version, dim, n, "synthetic", "", 16, 64, 0.0, analyzers)
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


@contextmanager
def peer(models: dict[str, Path], index: Path) -> Iterator[str]:
    """The peer server (`tests/perf/peer.py`) on uvicorn, one process on 127.0.0.1."""
    port = local.free_port()
    env = os.environ | {
        "WEFT_PEER_CLIP": str(models["clip"]),
        "WEFT_PEER_CAPTIONER": str(models["captioner"]),
        "WEFT_PEER_INDEX": str(index),
    }
    command = [sys.executable, "-m", "uvicorn", "tests.perf.peer:app", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/openapi.json", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(url: str, path: str, body: dict[str, Any] | None, clients: int, n: int) -> Figures:
    start = time.perf_counter()
    ms = asyncio.run(load(url, path, body, clients, n))
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Figures(float(p50), float(p95), float(p99), len(ms) / (time.perf_counter() - start))


@dataclass(frozen=True)
class Figures:
    p50: float
    p95: float
    p99: float
    rate: float

    def cells(self) -> str:
        return f"{self.p50:>8.1f} {self.p95:>8.1f} {self.p99:>8.1f} {self.rate:>7.1f}"


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
    parser.add_argument(
        "--arg",
        nargs="+",
        default=[],
        metavar="NAME=JSON",
        help="More app args, e.g. clip_in_ingress=false.",
    )
    args = parser.parse_args()
    os.environ.update(dict(pair.split("=", 1) for pair in args.env))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    more = {k: json.loads(v) for k, v in (pair.split("=", 1) for pair in args.arg)}
    clip_version = resolve("weft-clip@champion")
    with tempfile.TemporaryDirectory() as tmp:
        folders: dict[str, Path] = {}
        for role in ("clip", "captioner"):
            directory, _ = fetch_model(
                f"models:/weft-{role}@champion", StorageSpec(), Path(tmp, role)
            )
            folders[role] = directory
        clip = inference.load(folders["clip"])
        assert isinstance(clip, inference.Embedder)
        dim = clip.dim
        folder = Path(index_location(str(Path(tmp, "index")), clip_version, StorageSpec()).path)
        start = time.perf_counter()
        synthetic_index(folder, clip_version.name, clip_version.version, dim, args.items)
        print(f"synthetic index: {args.items:,} items in {time.perf_counter() - start:.1f} s")
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
            }
            | more,
            # as serve/weft.yaml: no per-request access log lines shipped to the driver
            "logging_config": {"enable_access_log": False},
        }
        (url,) = local.start(ServeDeploySchema(applications=[app]), local.free_port())
        cells = ("p50 ms", "p95 ms", "p99 ms", "req/s")
        print(
            f"\n{'endpoint':<12} {'clients':>7} | Weft: "
            + " ".join(f"{c:>8}" for c in cells)
            + " | peer: "
            + " ".join(f"{c:>8}" for c in cells)
            + " | p50 ratio"
        )
        with peer(folders, folder) as peer_url:
            for name, (path, body) in requests().items():
                if args.only and name not in args.only:
                    continue
                for clients in CLIENTS:
                    weft = measure(url, path, body, clients, args.requests)
                    other = measure(peer_url, path, body, clients, args.requests)
                    print(
                        f"{name:<12} {clients:>7} | {weft.cells()} | {other.cells()} | "
                        f"{weft.p50 / other.p50:>5.2f}x"
                    )
        local.stop()


if __name__ == "__main__":
    main()
