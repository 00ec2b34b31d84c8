"""The HTTP API on real Ray Serve, loading real registered versions from MLflow, with a
search index built by `weft index` on Ray Data: every endpoint on 127.0.0.1, filters, the
hybrid score, bad input as 4xx naming the field, and an index refused for another version."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import mlflow
import numpy as np
import pyarrow.dataset as pads
import pytest
import ray
import schemathesis
import torch
import yaml
from PIL import Image
from ray import serve
from ray.serve.schema import ServeDeploySchema
from ray.util.state import list_actors
from schemathesis.generation import GenerationMode

from weft import storage
from weft.curate.publish import published
from weft.demo.tour import TourError, tour
from weft.models import inference, registry
from weft.models.tokenizer import Tokenizer
from weft.registry.artifacts import fetch_predictor
from weft.registry.pyfunc import log_model
from weft.registry.versions import resolve
from weft.serve import keys, local
from weft.serve.index import IndexSpec, build
from weft.specs import SpecError, StorageSpec, parse_spec

pytestmark = pytest.mark.integration
CAPTIONS = ["a red circle on blue", "a small green square against white"] * 5
FUZZ_EXAMPLES = 20  # per operation and mode (valid, invalid)
IDLE_S = 25  # longer than Ray keeps a gauge that is not reported again (2 x 10 s)


def register(tmp: Path, kind: str, name: str) -> str:
    """A tiny model of `kind` (random weights) as version N of `name`, aliased champion."""
    torch.manual_seed(0)
    directory = registry.save(registry.build(kind), tmp / name, Tokenizer.train(CAPTIONS, 280))
    with mlflow.start_run() as run:
        log_model(directory, name)
    model_id = mlflow.get_run(run.info.run_id).outputs.model_outputs[-1].model_id
    version = mlflow.register_model(f"models:/{model_id}", name)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version.version)
    return f"{name}@champion"


@pytest.fixture(scope="module")
def app(
    curated: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The app on 127.0.0.1 with a tiny CLIP, captioner, diffusion model and inspector, and
    the index of the curated demo pairs; shut down at the end of the module."""
    tmp = tmp_path_factory.mktemp("serve")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    refs = {
        "clip": register(tmp, "clip-tiny", "serve-clip"),
        "captioner": register(tmp, "captioner-tiny", "serve-captioner"),
        "diffusion": register(tmp, "diffusion-tiny", "serve-diffusion"),
        "inspector": register(tmp, "inspector-tiny", "serve-inspector"),
    }
    manifest, _ = build(
        parse_spec(
            IndexSpec, {"data": curated[0], "model": refs["clip"], "output": str(tmp / "index")}
        )
    )
    keyfile = tmp / "keys.json"
    tokens = {
        "admin": keys.add(keyfile, "admin", ["admin"], 100_000),
        "search": keys.add(keyfile, "search-only", ["search"], 100_000),
        "slow": keys.add(keyfile, "slow", ["search"], 2),
    }
    port = local.free_port()
    config = ServeDeploySchema.model_validate(
        {
            "applications": [
                {
                    "name": "weft-test",
                    "route_prefix": "/",
                    "import_path": "weft.serve.app:build",
                    "args": refs
                    | {"index": str(tmp / "index"), "readable": [curated[0]], "keys": str(keyfile)},
                }
            ]
        }
    )
    (url,) = local.start(config, port)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with httpx.Client(base_url=url, timeout=60, headers=admin) as client:
        yield {
            "config": config,
            "url": url,
            "tokens": tokens,
            "client": client,
            "manifest": manifest,
            "refs": refs,
            "curated": curated[0],
            "tmp": tmp,
        }
    local.stop()
    patch.undo()


def png(colour: tuple[int, int, int], size: int = 32) -> str:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def alive_actors() -> list[Any]:
    """This session's live actors (named by address: other Rays may run on this host)."""
    address = ray.get_runtime_context().gcs_address
    return list(list_actors(address=address, filters=[("state", "=", "ALIVE")]))


def chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def broken_png() -> str:
    """A PNG whose header is fine and whose image data is split by a broken chunk: Pillow
    opens it and raises SyntaxError only when it decodes."""
    good = base64.b64decode(png((255, 0, 0)))
    at = good.index(b"IDAT") - 4
    (n,) = struct.unpack(">I", good[at : at + 4])
    data = good[at + 8 : at + 8 + n]
    middle = chunk(b"IDAT", data[: n // 2]) + b"\0\0\0\4\0\0\0\0" + chunk(b"IDAT", data[n // 2 :])
    return base64.b64encode(good[:at] + middle + good[at + 12 + n :]).decode()


def bomb_png(side: int = 20_000) -> str:
    """65 bytes whose header claims side x side pixels."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    body = header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + body).decode()


def many_pixels_png() -> str:
    """A real, valid PNG of 169 megapixels in about 20 KB."""
    out = io.BytesIO()
    Image.new("1", (13_000, 13_000)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def curated_rows(uri: str) -> list[dict[str, Any]]:
    """The curated image-text pairs (text documents have no image)."""
    data = published(storage.resolve(uri)).join("data")
    table = pads.dataset(data.path, format="parquet").to_table(
        columns=["id", "text", "lang"], filter=pads.field("image").is_valid()
    )
    return table.to_pylist()


def test_the_index_holds_every_curated_image_tagged_with_its_model_version(
    app: dict[str, Any],
) -> None:
    manifest = app["manifest"]
    assert (manifest.model, manifest.version) == ("serve-clip", "1")
    assert manifest.count == len(curated_rows(app["curated"])) and manifest.dim == 32


def test_embeddings_of_texts_and_images_are_unit_vectors_of_the_served_version(
    app: dict[str, Any],
) -> None:
    answer = app["client"].post(
        "/v1/inference/embeddings",
        json={"texts": ["a red circle"], "images": [{"b64": png((255, 0, 0))}]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"], body["dim"]) == ("serve-clip", "1", 32)
    assert [d["input"] for d in body["data"]] == ["text", "image"]
    for item in body["data"]:
        assert np.linalg.norm(item["embedding"]) == pytest.approx(1, abs=1e-4)


def test_search_finds_k_items_with_each_part_of_the_score_and_their_lineage(
    app: dict[str, Any],
) -> None:
    client = app["client"]
    answer = client.post("/v1/retrieval/search", json={"text": "a red circle", "k": 5})
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    assert len(hits) == 5
    for h in hits:
        assert h["score"] == pytest.approx(0.7 * h["vector_score"] + 0.3 * h["bm25_score"])
        assert h["source_uri"] and h["key"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    image = client.get(hits[0]["image_url"].replace(str(client.base_url).rstrip("/"), ""))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    lexical = client.post(
        "/v1/retrieval/search", json={"text": "red circle", "k": 5, "hybrid": 1.0}
    ).json()["hits"]
    assert all("red" in h["caption"] or "circle" in h["caption"] for h in lexical)
    fused = client.post(
        "/v1/retrieval/search",
        json={"text": "red circle", "k": 5, "hybrid": 0.5, "fusion": "rrf"},
    )
    assert fused.status_code == 200, fused.text
    scores = [h["score"] for h in fused.json()["hits"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1 / 61 + 1e-9
    reranked = client.post(
        "/v1/retrieval/search",
        json={"text": "red circle", "k": 5, "rerank": True, "rerank_share": 1},
    )
    assert reranked.status_code == 200, reranked.text
    by_captioner = [h["rerank_score"] for h in reranked.json()["hits"]]
    assert len(by_captioner) == 5 and by_captioner == sorted(by_captioner, reverse=True)
    assert all(s is None for s in (h["rerank_score"] for h in hits))
    unmoved = client.post(
        "/v1/retrieval/search",
        json={"text": "a red circle", "k": 5, "rerank": True, "rerank_share": 0},
    ).json()["hits"]
    assert [h["id"] for h in unmoved] == [h["id"] for h in hits]  # share 0: the first order
    by_image = client.post("/v1/retrieval/search", json={"image": {"b64": png((0, 0, 255))}})
    assert by_image.status_code == 200 and len(by_image.json()["hits"]) == 10


def test_filters_apply_before_the_top_k_is_cut(app: dict[str, Any]) -> None:
    rows = curated_rows(app["curated"])
    rare = min({r["lang"] for r in rows}, key=lambda lang: sum(r["lang"] == lang for r in rows))
    matching = sum(r["lang"] == rare for r in rows)
    k = min(matching, 20)
    answer = app["client"].post(
        "/v1/retrieval/search", json={"text": "a red circle", "k": k, "filters": {"lang": rare}}
    )
    hits = answer.json()["hits"]
    assert len(hits) == k and {h["lang"] for h in hits} == {rare}
    for filters in ({"source": "s3://nowhere/"}, {"nsfw": True}):  # nothing curated matches
        none = app["client"].post("/v1/retrieval/search", json={"text": "a", "filters": filters})
        assert none.status_code == 200 and none.json()["hits"] == []
    safe = app["client"].post(
        "/v1/retrieval/search", json={"text": "a", "k": 7, "filters": {"nsfw": False}}
    )
    assert [h["nsfw"] for h in safe.json()["hits"]] == [False] * 7


def test_captions_and_generation_answer_with_their_versions(app: dict[str, Any]) -> None:
    client = app["client"]
    captions = client.post(
        "/v1/inference/caption", json={"images": [{"b64": png((255, 0, 0))}], "beam_size": 2}
    )
    assert captions.status_code == 200, captions.text
    assert captions.json()["version"] == "1" and len(captions.json()["captions"]) == 1
    drawn = client.post(
        "/v1/inference/generate",
        json={"prompt": "a red circle", "negative_prompt": "blue", "steps": 2, "seed": 3},
    )
    assert drawn.status_code == 200, drawn.text
    assert drawn.headers["content-type"] == "image/png"
    assert drawn.headers["x-weft-model"] == "serve-diffusion"
    again = client.post(
        "/v1/inference/generate",
        json={"prompt": "a red circle", "negative_prompt": "blue", "steps": 2, "seed": 3},
    )
    assert again.content == drawn.content  # seeded: the same image
    assert drawn.headers["x-weft-safety"].startswith("passed")  # NudeNet looked at it
    models = client.get("/v1/models").json()
    assert {role: m["version"] for role, m in models["models"].items()} == {
        "clip": "1",
        "captioner": "1",
        "diffusion": "1",
        "inspector": "1",
    }
    assert models["index"]["version"] == "1" and models["index"]["count"] > 0


def test_inspection_answers_with_its_confidence_and_where_it_looked(app: dict[str, Any]) -> None:
    for crops in (False, True):
        answer = app["client"].post(
            "/v1/inference/inspect",
            json={
                "image": {"b64": png((200, 40, 40), 64)},
                "prompt": "a red circle",
                "crops": crops,
            },
        )
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert (found["model"], found["version"], found["crops"]) == ("serve-inspector", "1", crops)
        assert 0 <= found["confidence"] <= 1
        assert found["abstained"] == (found["answer"] == "uncertain")
        assert found["abstained"] or found["answer"] == found["guess"]
        looked = Image.open(io.BytesIO(base64.b64decode(found["attention_png"])))
        assert looked.size == (64, 64)


def test_the_demo_tour_sends_one_request_to_each_endpoint_and_shows_the_answers(
    app: dict[str, Any],
) -> None:
    visits = tour(app["url"], app["tokens"]["admin"], app["tmp"] / "tour.png", query="circle")
    last_parts = [v.route.rsplit("/", 1)[-1] for v in visits]
    assert last_parts == [
        "",
        "models",
        "search",
        "lineage",
        "image",
        "embeddings",
        "search",
        "caption",
        "generate",
    ]
    answers = {v.route: v.answer for v in visits}
    assert answers["GET /v1/models"][:3] == [
        "clip: serve-clip v1",
        "captioner: serve-captioner v1",
        "diffusion: serve-diffusion v1",
    ]
    assert answers["POST /v1/inference/embeddings"] == [
        "serve-clip v1: text → 32-d vector",
        "serve-clip v1: image → 32-d vector",
    ]
    assert '"images": [{"b64": "<' in visits[5].sent  # the image shown by its size
    assert "search page" in visits[0].answer[0]
    lineage = visits[3].answer
    assert lineage[0].startswith(f"item {visits[3].route.split('/')[-2]}: from ")
    assert "registered as serve-clip v1 (champion)" in lineage
    assert Image.open(app["tmp"] / "tour.png").format == "PNG"
    with pytest.raises(TourError, match="GET /v1/models: 401"):
        tour(app["url"], "weft_not-a-key", app["tmp"] / "refused.png")


@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("/v1/inference/embeddings", {"texts": [""]}, 422, "body.texts.0"),
        ("/v1/inference/embeddings", {}, 422, "give at least one text or image"),
        ("/v1/inference/embeddings", {"images": [{"b64": "@@@"}]}, 422, "images[0].b64"),
        (
            "/v1/inference/embeddings",
            {"images": [{"b64": base64.b64encode(b"no image").decode()}]},
            422,
            "images",
        ),
        ("/v1/inference/embeddings", {"images": [{"uri": "/etc/passwd"}]}, 422, "images[0].uri"),
        ("/v1/retrieval/search", {"text": "a", "k": 0}, 422, "body.k"),
        ("/v1/retrieval/search", {"text": "a", "image": {"b64": "aa=="}}, 422, "exactly one"),
        ("/v1/retrieval/search", {"text": "a", "fusion": "sum"}, 422, "body.fusion"),
        ("/v1/retrieval/search", {"image": {"b64": "aa=="}, "rerank": True}, 422, "rerank"),
        ("/v1/retrieval/search", {"text": "a", "rerank_share": 1.5}, 422, "body.rerank_share"),
        ("/v1/inference/generate", {"prompt": "a", "steps": 0}, 422, "body.steps"),
        ("/v1/inference/caption", {"images": []}, 422, "body.images"),
        ("/v1/inference/inspect", {"image": {"b64": "@@@"}}, 422, "image.b64"),
        (
            "/v1/inference/inspect",
            {"image": {"b64": base64.b64encode(b"no image").decode()}},
            422,
            "image: cannot be decoded",
        ),
        (
            "/v1/inference/inspect",
            {"image": {"b64": png((9, 9, 9))}, "prompt": " ? "},
            422,
            "body.prompt",
        ),
        (
            "/v1/inference/inspect",
            {
                "image": {"b64": png((9, 9, 9))},
                "prompt": "is anything at all wrong with this long prompt?",
            },
            422,
            "prompt: the prompt is",
        ),
        (
            "/v1/inference/inspect",
            {"image": {"b64": png((9, 9, 9))}, "crops": "maybe"},
            422,
            "body.crops",
        ),
        ("/v1/inference/inspect", {"prompt": "any defect?"}, 422, "body.image"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    app: dict[str, Any], path: str, body: dict[str, Any], status: int, names: str
) -> None:
    answer = app["client"].post(path, json=body)
    assert answer.status_code == status, answer.text
    assert names in answer.json()["detail"]


def test_schemathesis_finds_no_server_error(app: dict[str, Any]) -> None:
    """Every operation of the OpenAPI schema, fuzzed with valid and invalid inputs in
    bounded examples (the models answer on 2 CPUs), answers below 500."""
    schema = schemathesis.openapi.from_url(f"{app['url'].rstrip('/')}/openapi.json")
    errors: list[str] = []
    calls = 0
    for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
        operation = result.ok()

        @hypothesis.given(case=operation.as_strategy(mode))
        @hypothesis.settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def fuzz(case: Any) -> None:
            nonlocal calls
            answer = case.call(base_url=app["url"].rstrip("/"), headers=dict(app["client"].headers))
            calls += 1
            if answer.status_code >= 500:
                errors.append(
                    f"{case.method} {case.formatted_path}: {answer.status_code} {answer.text[:200]}"
                )

        fuzz()
    print(f"schemathesis: {calls} calls, {len(errors)} server errors")
    assert calls > 0 and errors == []


def test_an_oversize_body_and_an_unknown_item_are_refused(app: dict[str, Any]) -> None:
    client = app["client"]
    big = client.post(
        "/v1/inference/embeddings",
        content=b"{" + b" " * (17 << 20) + b"}",
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    assert client.get("/v1/items/nope/image").status_code == 404


def beside(app: dict[str, Any], name: str, args: dict[str, Any]) -> ServeDeploySchema:
    """A config of the module's app and one more, at /<name>: a Serve config is the whole
    set of apps, so one that left the first out would remove it. The other serves no
    inspector: its replica would not fit beside the first app's on two cores."""
    first = app["config"].applications[0]
    other = {"name": name, "route_prefix": f"/{name}", "import_path": first.import_path}
    return ServeDeploySchema(applications=[first, {**other, "args": args | {"inspector": None}}])


def test_a_generated_image_the_safety_filter_blocks_is_not_returned(app: dict[str, Any]) -> None:
    strict = {"threshold": 0.0}  # every image scores at least 0: each one is blocked
    args = app["refs"] | {"captioner": None, "index": None, "safety": strict}
    local.start(beside(app, "strict", args))
    try:
        blocked = app["client"].post(
            "/strict/v1/inference/generate", json={"prompt": "a", "steps": 2}
        )
        assert blocked.status_code == 422 and blocked.headers["content-type"] == "application/json"
        assert "blocked by the safety filter" in blocked.json()["detail"]
    finally:
        serve.delete("strict")


def test_requests_are_counted_timed_and_carry_their_request_id(app: dict[str, Any]) -> None:
    client = app["client"]
    answer = client.post(
        "/v1/retrieval/search", json={"text": "a", "k": 1}, headers={"X-Request-Id": "req-42"}
    )
    assert answer.headers["x-request-id"] == "req-42"
    assert client.get("/v1/models").headers["x-request-id"]  # Serve's own when not given
    port = ray._private.worker._global_node.metrics_export_port
    wanted = [
        "ray_weft_http_requests_total{",
        'route="/v1/retrieval/search"',
        "ray_weft_http_request_latency_ms_bucket{",
        "ray_weft_served_version{",
        'role="index"',
    ]

    def scraped() -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Ray exports metrics every few seconds
        text = scraped()
        if all(w in text for w in wanted):
            break
        time.sleep(2)
    assert all(w in text for w in wanted), [w for w in wanted if w not in text]
    time.sleep(IDLE_S)  # no request: the served versions are still reported
    assert 'role="index"' in scraped()
    logs = Path(ray._private.worker._global_node.get_session_dir_path(), "logs", "serve")
    lines = [
        line
        for log in logs.glob("replica_weft-test_ingress_*.log")
        for line in log.read_text().splitlines()
        if "id=req-42" in line
    ]
    assert len(lines) == 1 and "route=/v1/retrieval/search status=200 ms=" in lines[0]


DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "monitoring" / "grafana-weft.json"


def queried_series() -> set[str]:
    """Every series the Grafana dashboard's panels and variables query."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return {name for e in exprs for name in re.findall(r"\b(ray_weft_[a-z_]+)\b", e)}


def test_every_series_the_grafana_dashboard_queries_is_on_rays_endpoint(
    app: dict[str, Any], demo_corpus: Path, tmp_path: Path
) -> None:
    """A small curation, a short training (scraped while it runs: its gauges live as long as
    the run) and a few requests; then each series the dashboard charts has samples."""
    from tests.integration.conftest import _curated
    from tests.integration.test_train import clip_spec
    from weft.train.run import train

    _curated("metrics", str(demo_corpus / "docs"), "jsonl", tmp_path / "curated")
    for text in ("a red circle", "a square"):
        app["client"].post("/v1/retrieval/search", json={"text": text, "k": 2})
    wanted = queried_series()
    assert len(wanted) == 7, wanted  # 1 of curation, 3 of training, 3 of serving
    spec = clip_spec(
        app["curated"],
        tmp_path,
        name="metrics-run",
        optim={"lr": 1e-3, "warmup_steps": 1, "max_steps": 60, "batch_size": 8},
        workers={"count": 1, "cpus": 0.5},  # beside the app's replicas on 2 CPUs
        checkpoint={"every_steps": 60},
        eval={"every_steps": 60, "batches": 1},
    )
    training = threading.Thread(target=train, args=(spec,))
    training.start()
    port = ray._private.worker._global_node.metrics_export_port
    samples: set[str] = set()  # every sample line of Weft's series, over the scrapes
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not wanted <= _series(samples):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples |= {line for line in text.splitlines() if line.startswith("ray_weft_")}
        time.sleep(1)
    training.join()
    assert wanted <= _series(samples), sorted(wanted - _series(samples))
    assert any('pipeline="metrics"' in line for line in samples)
    assert any('run="metrics-run"' in line for line in samples)


def _series(samples: set[str]) -> set[str]:
    return {line.split("{", 1)[0] for line in samples}


def test_a_killed_replica_is_replaced_and_its_failed_requests_counted(
    app: dict[str, Any],
) -> None:
    def captioner_replicas() -> list[Any]:
        return [a for a in alive_actors() if a.class_name == "ServeReplica:weft-test:captioner"]

    (victim,) = captioner_replicas()
    picture = {"images": [{"b64": png((255, 0, 0))}]}
    codes: list[int] = []
    done = threading.Event()

    def requests() -> None:
        with httpx.Client(base_url=app["url"], headers=app["client"].headers, timeout=60) as own:
            while not done.is_set():
                codes.append(own.post("/v1/inference/caption", json=picture).status_code)

    loop = threading.Thread(target=requests)
    loop.start()
    try:
        time.sleep(1)
        killed_at = len(codes)
        ray.kill(ray.get_actor(victim.name, namespace="serve"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a new replica answers
            fresh = [a for a in captioner_replicas() if a.actor_id != victim.actor_id]
            if fresh and codes[-1:] == [200] and len(codes) > killed_at + 20:
                break
            time.sleep(0.5)
    finally:
        done.set()
        loop.join()
    failed = sum(c != 200 for c in codes)
    print(f"replica kill: {len(codes)} requests, {failed} failed, replica replaced")
    assert fresh and codes[-1] == 200
    assert all(c in (200, 503) for c in codes)  # a 503 says when to try again


def test_keys_are_required_scoped_and_rate_limited(app: dict[str, Any]) -> None:
    client, tokens = app["client"], app["tokens"]
    search = {"text": "a red circle", "k": 1}
    nobody = client.post("/v1/retrieval/search", json=search, headers={"Authorization": ""})
    assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"
    wrong = client.post(
        "/v1/retrieval/search", json=search, headers={"Authorization": "Bearer weft_nope"}
    )
    assert wrong.status_code == 401 and "weft_nope" not in wrong.text
    reader = {"Authorization": f"Bearer {tokens['search']}"}
    assert client.post("/v1/retrieval/search", json=search, headers=reader).status_code == 200
    refused = client.post("/v1/inference/generate", json={"prompt": "a"}, headers=reader)
    assert refused.status_code == 403 and "lacks the generate scope" in refused.json()["detail"]
    slow = {"Authorization": f"Bearer {tokens['slow']}"}
    codes = [client.get("/v1/models", headers=slow).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/v1/models", headers=slow)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_moving_the_alias_rolls_the_app_and_its_index_without_a_failed_request(
    app: dict[str, Any],
) -> None:
    tmp, client = app["tmp"], app["client"]
    newer = register(tmp / "v2", "clip-tiny", "serve-clip")  # version 2 takes the alias
    assert resolve(newer).version == "2"
    assert local.follow_aliases(app["config"]) == []  # no index of v2 yet: stays on v1
    assert client.get("/v1/models").json()["models"]["clip"]["version"] == "1"
    index = {  # beside the running app: one embedding actor
        "data": app["curated"],
        "model": "serve-clip/2",
        "output": str(tmp / "index"),
        "actors": 1,
    }
    build(parse_spec(IndexSpec, index))
    versions: list[str] = []
    failures: list[str] = []
    done = threading.Event()

    def requests() -> None:
        with httpx.Client(base_url=app["url"], headers=client.headers, timeout=60) as own:
            while not done.is_set():
                answer = own.post("/v1/inference/embeddings", json={"texts": ["a red circle"]})
                if answer.status_code == 200:
                    versions.append(answer.json()["version"])
                else:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    loop = threading.Thread(target=requests)
    loop.start()
    try:
        time.sleep(1)
        assert local.follow_aliases(app["config"]) == ["weft-test"]
        time.sleep(2)
    finally:
        done.set()
        loop.join()
    assert failures == []
    assert versions[0] == "1" and versions[-1] == "2"
    first_new = versions.index("2")
    assert set(versions[first_new:]) == {"2"}  # the answers change version at one point
    models = client.get("/v1/models").json()
    assert models["models"]["clip"]["version"] == "2" and models["index"]["version"] == "2"
    print(f"alias switch: {len(versions)} requests, 0 failed, v1 → v2 at request {first_new}")


def test_an_index_of_another_version_is_refused_naming_both(app: dict[str, Any]) -> None:
    tmp = app["tmp"]
    newer = register(tmp / "v3", "clip-tiny", "serve-clip")  # version 3 takes the alias
    assert resolve(newer).version == "3"
    config = beside(app, "stale", app["refs"] | {"clip": newer, "index": str(tmp / "index")})
    with pytest.raises(SpecError, match="no index of serve-clip v3"):
        local.start(config)
    index = tmp / "index" / "serve-clip"
    shutil.copytree(index / "v1", index / "v3")  # v1's vectors where v3's should be
    with pytest.raises(SpecError, match="built with serve-clip v1, not serve-clip v3"):
        local.start(config)
    assert "stale" not in serve.status().applications  # removed, for a corrected retry
    assert app["client"].get("/v1/models").status_code == 200  # the first app still serves


# Hostile requests: each case was an answer of 500, a request read whole, or a request that
# failed because of another caller's, before the gate and the image checks.
@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        (
            "/v1/inference/embeddings",
            {"images": [{"b64": broken_png()}]},
            422,
            "images: image 0: cannot be decoded (SyntaxError: broken PNG file",
        ),
        ("/v1/inference/caption", {"images": [{"b64": broken_png()}]}, 422, "images: image 0"),
        (
            "/v1/inference/embeddings",
            {"images": [{"b64": bomb_png()}]},
            422,
            "images[0]: cannot be decoded (more than 64000000 pixels)",
        ),
        ("/v1/retrieval/search", {"image": {"b64": bomb_png()}}, 422, "image: cannot be decoded"),
        (
            "/v1/inference/embeddings",
            {"images": [{"b64": many_pixels_png()}]},
            422,
            "images[0]: cannot be decoded (13000x13000 pixels is more than 64000000)",
        ),
        (
            "/v1/inference/embeddings",
            {"images": [{"b64": base64.b64encode(b"GIF89a" + b"\0" * 32).decode()}]},
            422,
            "images[0]: cannot be decoded (not a PNG, JPEG, WEBP image)",
        ),
    ],
)
def test_undecodable_and_oversize_images_are_422s_naming_the_input(
    app: dict[str, Any], path: str, body: dict[str, Any], status: int, detail: str
) -> None:
    answer = app["client"].post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(detail), answer.text


@pytest.mark.parametrize(
    ("uri", "detail"),
    [
        ("http://example.com/a.png", "give an s3:// URI or an absolute path"),
        ("s3://", "not a valid URI"),
        ("~nosuchuser/x.png", "give an s3:// URI or an absolute path"),
        ("relative/x.png", "give an s3:// URI or an absolute path"),
        ("/tmp/a\x00b.png", "not a valid URI"),
        ("/tmp/\ud800.png", "not a valid URI"),  # a lone surrogate
        ("/tmp/\udcff.png", "not a valid URI"),  # a surrogate escape of a byte
        ("/etc/passwd", "is not under a prefix this app may read"),
        ("s3://other-bucket/x.png", "is not under a prefix this app may read"),
    ],
)
def test_malformed_and_foreign_uris_are_422s(app: dict[str, Any], uri: str, detail: str) -> None:
    answer = app["client"].post(  # json.dumps escapes surrogates as JSON allows: "\ud800"
        "/v1/inference/embeddings",
        content=json.dumps({"images": [{"uri": uri}]}),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("images[0].uri: ") and detail in answer.text


def test_readable_prefixes_are_matched_by_path_parts_and_reads_are_bounded(
    app: dict[str, Any],
) -> None:
    client, root = app["client"], Path(app["curated"])
    sibling = Path(f"{root}-x")
    sibling.mkdir(exist_ok=True)
    (sibling / "a.png").write_bytes(base64.b64decode(png((1, 2, 3))))
    beside = client.post(
        "/v1/inference/embeddings", json={"images": [{"uri": str(sibling / "a.png")}]}
    )
    assert beside.status_code == 422 and "not under a prefix" in beside.text
    (root / "huge.png").write_bytes(b"\0" * (9 << 20))
    (root / "ok.png").write_bytes(base64.b64decode(png((1, 2, 3))))
    try:
        huge = client.post(
            "/v1/inference/embeddings", json={"images": [{"uri": str(root / "huge.png")}]}
        )
        assert huge.status_code == 413 and huge.json()["detail"] == "images[0].uri: over 8 MiB"
        missing = str(root / "missing.png")
        absent = client.post("/v1/inference/embeddings", json={"images": [{"uri": missing}]})
        assert absent.status_code == 422
        assert absent.json()["detail"] == f"images[0].uri: {missing}: no such file or object"
        ok = client.post(
            "/v1/inference/embeddings", json={"images": [{"uri": str(root / "ok.png")}]}
        )
        assert ok.status_code == 200, ok.text
    finally:
        (root / "huge.png").unlink()
        (root / "ok.png").unlink()


def test_one_bad_image_in_a_merged_batch_fails_only_its_own_request(app: dict[str, Any]) -> None:
    good = {"images": [{"b64": png((0, 200, 0))}]}
    bad = {"images": [{"b64": broken_png()}]}
    bodies = [bad if i % 15 == 7 else good for i in range(48)]  # 3 bad among 45 good

    def send(body: dict[str, Any]) -> int:
        return int(app["client"].post("/v1/inference/embeddings", json=body).status_code)

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, bodies))
    assert [c for c, b in zip(codes, bodies, strict=True) if b is good] == [200] * 45
    assert [c for c, b in zip(codes, bodies, strict=True) if b is bad] == [422] * 3


def test_a_chunked_body_over_the_limit_is_a_413_and_without_a_key_a_401(
    app: dict[str, Any],
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"a" * (1 << 20)
        yield b'"]}'

    client = app["client"]
    answer = client.post("/v1/inference/embeddings", content=chunks())
    assert answer.status_code == 413 and "over the limit" in answer.text
    nobody = client.post(
        "/v1/inference/embeddings", content=chunks(), headers={"Authorization": ""}
    )
    assert nobody.status_code == 401


def test_authentication_comes_before_validation(app: dict[str, Any]) -> None:
    client = app["client"]
    for body in ({"texts": []}, {"nonsense": 1}):
        answer = client.post("/v1/inference/embeddings", json=body, headers={"Authorization": ""})
        assert answer.status_code == 401 and "texts" not in answer.text
    garbled = client.post(
        "/v1/inference/embeddings", content=b"{oops", headers={"Authorization": ""}
    )
    assert garbled.status_code == 401


def test_image_urls_come_from_the_apps_own_base_not_the_host_header(app: dict[str, Any]) -> None:
    answer = app["client"].post(
        "/v1/retrieval/search", json={"text": "a", "k": 1}, headers={"Host": "evil.example"}
    )
    (hit,) = answer.json()["hits"]
    assert hit["image_url"] == f"/v1/items/{hit['id']}/image"


def test_a_revoked_key_is_refused_and_a_new_one_accepted_without_a_redeploy(
    app: dict[str, Any],
) -> None:
    keyfile = app["tmp"] / "keys.json"
    added = keys.add(keyfile, "late", ["search"], 1000)
    late = {"Authorization": f"Bearer {added}"}

    def status(headers: dict[str, str]) -> int:
        return int(app["client"].get("/v1/models", headers=headers).status_code)

    deadline = time.monotonic() + 15
    while status(late) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status(late) == 200
    keys.revoke(keyfile, "late")
    while status(late) != 401 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status(late) == 401


def test_answers_past_the_time_limit_are_503s_and_docs_can_be_closed(
    app: dict[str, Any],
) -> None:
    args = app["refs"] | {
        "captioner": None,
        "diffusion": None,
        "index": None,
        "timeout_s": 0.001,  # no answer can be this quick: every request runs out of time
        "docs": False,
    }
    local.start(beside(app, "hurried", args))
    try:
        client = app["client"]
        assert client.get("/hurried/openapi.json").status_code == 404
        assert client.get("/hurried/docs").status_code == 404
        for headers in ({}, {"x-request-timeout-seconds": "0"}):  # lifts Serve's, not ours
            late = client.post(
                "/hurried/v1/inference/embeddings",
                json={"texts": ["a red circle"]},
                headers=headers | {"X-Request-Id": "late-1"},
            )
            assert late.status_code == 503 and int(late.headers["retry-after"]) >= 1
        logs = Path(ray._private.worker._global_node.get_session_dir_path(), "logs", "serve")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the request line, 503 included
            lines = [
                line
                for log in logs.glob("replica_hurried_ingress_*.log")
                for line in log.read_text().splitlines()
                if "id=late-1" in line and "status=503" in line
            ]
            if len(lines) == 2:
                break
            time.sleep(1)
        assert len(lines) == 2
    finally:
        serve.delete("hurried")


def test_weft_serve_stops_and_exits_0_on_sigterm(app: dict[str, Any], tmp_path: Path) -> None:
    port = local.free_port()
    config = {
        "http_options": {"host": "127.0.0.1", "port": port},
        "applications": [
            {
                "name": "weft",
                "route_prefix": "/",
                "import_path": "weft.serve.app:build",
                "args": {"clip": app["refs"]["clip"].split("@")[0] + "/1"}
                | {"captioner": None, "diffusion": None, "index": None},
            }
        ],
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{app['tmp']}/mlflow.db"
    weft = Path(sys.executable).parent / "weft"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(weft), "serve", str(path), "--follow", "0"], stdout=out, stderr=out, env=env
        )
        try:
            deadline = time.monotonic() + 240
            up = False
            while not up and time.monotonic() < deadline and proc.poll() is None:
                try:
                    up = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).is_success
                except httpx.TransportError:
                    time.sleep(1)
            assert up, log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, log.read_text()[-3000:]


def test_the_clip_in_its_own_deployment_answers_as_the_one_in_the_ingress(
    app: dict[str, Any], tmp_path: Path
) -> None:
    args = app["refs"] | {"clip": "serve-clip/1", "captioner": None, "diffusion": None}
    local.start(beside(app, "apart", args | {"index": None, "clip_in_ingress": False}))
    try:
        body = {"texts": ["a red circle"], "images": [{"b64": png((255, 0, 0))}]}
        answer = app["client"].post("/apart/v1/inference/embeddings", json=body)
        assert answer.status_code == 200, answer.text
        clip, _, _ = fetch_predictor(
            "models:/serve-clip/1", "clip", StorageSpec(), tmp_path, inference.Embedder
        )
        expected = [
            clip.embed_texts(body["texts"])[0],
            clip.embed_images([base64.b64decode(png((255, 0, 0)))])[0],
        ]
        got = [d["embedding"] for d in answer.json()["data"]]
        assert np.allclose(got, expected, atol=1e-5)
        replicas = {a.class_name for a in alive_actors()}
        assert "ServeReplica:apart:clip" in replicas
        assert "ServeReplica:weft-test:clip" not in replicas  # there: in the ingress
    finally:
        serve.delete("apart")
