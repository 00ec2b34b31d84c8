"""The demo's tour of the HTTP API: a Serve config's apps deployed with a fresh API key
(`deploy`), then one request to each endpoint, as a developer would send it, and what came
back (`tour`): what `make demo` shows after it deploys the champions.

The requests chain as a user's would: the search page; a text search; the top hit's lineage
and its image, fetched from `/v1/items/{id}/image`, then captioned, embedded and used as an
image query; a generation with the version's default guidance.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from weft.serve import keys, local

QUERY = "a red circle"


@dataclass(frozen=True)
class Visit:
    """One request: the route, what was sent, the HTTP status, the time it took and the
    answer in brief (a line per hit, caption or vector)."""

    route: str
    sent: str
    status: int
    ms: float
    answer: list[str]


class TourError(RuntimeError):
    """An endpoint did not answer 200; names the route and the app's own detail."""


@dataclass(frozen=True)
class Deployed:
    """Apps that `deploy` started: the first one's URL, the key they accept, its keys file."""

    url: str
    key: str
    keyfile: Path


def deploy(config_path: Path, home: Path) -> Deployed:
    """Start a Serve config's apps on a local Ray (on a free port), each given one fresh key
    for search and generation, stored hashed in `home/keys.json` (any other key there is
    gone); `weft.serve.local.stop()` shuts them down."""
    config = local.load_config(config_path)
    keyfile = home / "keys.json"
    keyfile.unlink(missing_ok=True)
    key = keys.add(keyfile, "demo", ["search", "generate"], per_minute=600)
    for served in config.applications:
        served.args = (served.args or {}) | {"keys": str(keyfile)}
    (url, *_) = local.start(config, local.free_port())
    return Deployed(url, key, keyfile)


def tour(url: str, key: str | None, generated: Path, query: str = QUERY) -> list[Visit]:
    """Visit every endpoint of the app at `url` once (with `key` as the bearer token); the
    generated PNG is written to `generated`."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    visits: list[Visit] = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:

        def call(route: str, body: dict[str, Any] | None = None) -> httpx.Response:
            method = "GET" if body is None else "POST"
            start = time.perf_counter()
            response = client.request(method, route, json=body)
            ms = (time.perf_counter() - start) * 1e3
            if response.status_code != 200:
                raise TourError(f"{method} {route}: {response.status_code} {response.text[:300]}")
            sent = json.dumps(_shown(body)) if body else ""
            visits.append(Visit(f"{method} {route}", sent, 200, ms, _brief(response)))
            return response

        call("/")
        call("/v1/models")
        hits = call("/v1/retrieval/search", {"text": query, "k": 5}).json()["hits"]
        if not hits:
            raise TourError(f"POST /v1/retrieval/search: no hit for {query!r} (an empty index?)")
        call(f"/v1/items/{hits[0]['id']}/lineage")
        image = call(f"/v1/items/{hits[0]['id']}/image").content
        picture = {"b64": base64.b64encode(image).decode()}
        call("/v1/inference/embeddings", {"texts": [query], "images": [picture]})
        call("/v1/retrieval/search", {"image": picture, "k": 5})
        call("/v1/inference/caption", {"images": [picture]})
        png = call("/v1/inference/generate", {"prompt": query, "seed": 0})
        generated.parent.mkdir(parents=True, exist_ok=True)
        generated.write_bytes(png.content)
    return visits


def _shown(body: Any) -> Any:
    """A request body as printed: each image's base64 as its size."""
    if isinstance(body, dict):
        return {
            k: f"<{len(v) * 3 // 4} bytes>" if k == "b64" else _shown(v) for k, v in body.items()
        }
    return [_shown(v) for v in body] if isinstance(body, list) else body


def _brief(response: httpx.Response) -> list[str]:
    """The answer in a few lines: the fields a person checks first."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/html"):
        return [f"the search page and dataset explorer ({len(response.content)} bytes of HTML)"]
    if kind.startswith("image/"):
        version = response.headers.get("x-weft-model-version")
        model = f"{response.headers.get('x-weft-model')} v{version}: " if version else ""
        safety = response.headers.get("x-weft-safety")
        return [
            f"{model}{kind}, {len(response.content)} bytes"
            + (f", safety check {safety}" if safety else "")
        ]
    body = response.json()
    if "source" in body:
        return _lineage(body)
    if "models" in body:
        index = body.get("index")
        return [f"{role}: {m['name']} v{m['version']}" for role, m in body["models"].items()] + (
            [f"index: {index['count']} items, built with {index['model']} v{index['version']}"]
            if index
            else []
        )
    origin = f"{body['model']} v{body['version']}"
    if "hits" in body:
        return [f"{origin}, top 3 of {len(body['hits'])}:"] + [
            f"{h['score']:.3f} (vector {h['vector_score']:.3f}, bm25 {h['bm25_score']:.3f}) "
            f"{h['caption']!r} from {h['source_uri']}"
            for h in body["hits"][:3]
        ]
    if "captions" in body:
        return [f"{origin}: {c!r}" for c in body["captions"]]
    return [f"{origin}: {d['input']} → {body['dim']}-d vector" for d in body["data"]]


def _lineage(body: dict[str, Any]) -> list[str]:
    """An item's lineage, a line per link (`weft lineage <id>` prints it whole)."""
    lines = [f"item {body['item']}: from {body['source']['uri']} ({body['source']['key']})"]
    if body["dataset"]:
        d = body["dataset"]
        lines.append(f"curated into {d['version']} (content hash {d['content_hash']})")
    if body["training"]:
        t = body["training"]
        lines.append(f"trained on by run {t['name']} ({t['run_id']})")
    if body["model"]:
        m = body["model"]
        lines.append(f"registered as {m['name']} v{m['version']} ({', '.join(m['aliases'])})")
    lines.append(f"indexed in {body['index']['uri']}")
    return lines + [f"not traced: {gap}" for gap in body["gaps"]]
