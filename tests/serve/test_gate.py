"""The gate every request passes, on a small FastAPI app in-process (no Ray): keys before the
body, the body limit for every transfer encoding, time limits, costs, closed docs, safe
request ids, and every answer counted, 5xx included."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from weft.serve import gate, keys, telemetry

pytestmark = pytest.mark.anyio
LIMIT = 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Body(BaseModel):
    n: int


def make_app(tmp_path: Path, **limits: Any) -> tuple[FastAPI, dict[str, str]]:
    """An app with the gate, a keys file of two keys and routes that need a scope."""
    file = tmp_path / "keys.json"
    tokens = {
        "reader": keys.add(file, "reader", ["search"], 60),
        "admin": keys.add(file, "admin", ["admin"], 60),
    }
    app = FastAPI()
    app.add_middleware(gate.Gate)
    app.state.policy = gate.Policy(
        keyring=keys.Keyring(str(file), reload_s=limits.pop("reload_s", 2.0)),
        docs=limits.pop("docs", True),
        max_body_bytes=LIMIT,
        body_timeout_s=limits.pop("body_timeout_s", 5.0),
        timeout_s=limits.pop("timeout_s", 5.0),
    )

    @app.post("/echo", openapi_extra={gate.SCOPE_FIELD: ["search"]})
    async def echo(body: Body, request: Request) -> dict[str, int]:
        gate.charge(request.scope, body.n)
        return {"n": body.n}

    included = APIRouter()  # as Serve's class-based ingress mounts its routes

    @included.post("/draw", openapi_extra={gate.SCOPE_FIELD: ["generate"]})
    async def draw() -> dict[str, str]:
        return {}

    app.include_router(included)

    @app.get("/slow", openapi_extra={gate.SCOPE_FIELD: ["search"]})
    async def slow() -> dict[str, str]:
        await asyncio.sleep(30)
        return {}

    @app.get("/broken", openapi_extra={gate.SCOPE_FIELD: ["search"]})
    async def broken() -> dict[str, str]:
        raise RuntimeError("a bug")

    return app, tokens


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """Every (request id, method, route, status) the gate reports, beside the real metrics."""
    calls: list[tuple[Any, ...]] = []
    real = telemetry.record

    def record(rid: str, method: str, route: str, status: int, ms: float) -> None:
        calls.append((rid, method, route, status))
        real(rid, method, route, status, ms)

    monkeypatch.setattr(telemetry, "record", record)
    yield calls


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
    )


async def test_no_key_is_a_401_whatever_the_body(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with client(app) as c:
        for body in (b"{not json", b'{"n": "x"}', b""):
            answer = await c.post("/echo", content=body)
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"] == "Bearer"
        wrong = await c.post("/echo", json={"n": 1}, headers={"Authorization": "Bearer weft_no"})
        assert wrong.status_code == 401 and "weft_no" not in wrong.text


async def test_a_key_without_the_routes_scope_is_a_403_also_on_an_included_router(
    tmp_path: Path,
) -> None:
    app, tokens = make_app(tmp_path)
    async with client(app, tokens["reader"]) as c:
        refused = await c.post("/draw")
        assert refused.status_code == 403 and "lacks the generate scope" in refused.text
    async with client(app, tokens["admin"]) as c:
        assert (await c.post("/draw")).status_code == 200


async def test_a_chunked_body_over_the_limit_is_a_413_read_no_further(tmp_path: Path) -> None:
    app, tokens = make_app(tmp_path)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        for _ in range(64):
            sent += 256
            yield b" " * 256

    async with client(app, tokens["reader"]) as c:
        answer = await c.post("/echo", content=chunks())
        assert answer.status_code == 413 and "over the limit of 1024 bytes" in answer.text
    assert sent <= LIMIT + 256  # the gate stopped reading at the chunk that crossed it


async def test_a_declared_length_over_the_limit_is_a_413_before_reading(tmp_path: Path) -> None:
    app, tokens = make_app(tmp_path)
    async with client(app, tokens["reader"]) as c:
        answer = await c.post("/echo", content=b"{" + b" " * 2000 + b"}")
        assert answer.status_code == 413


async def test_a_stalled_body_times_out_with_a_408(tmp_path: Path) -> None:
    app, tokens = make_app(tmp_path, body_timeout_s=0.3)

    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"n": '
        await asyncio.sleep(5)
        yield b"1}"

    async with client(app, tokens["reader"]) as c:
        answer = await c.post("/echo", content=stalled())
        assert answer.status_code == 408 and "not received within 0.3 s" in answer.text


async def test_an_answer_not_ready_in_time_is_a_503_with_retry_after(
    tmp_path: Path, recorded: list[tuple[Any, ...]]
) -> None:
    app, tokens = make_app(tmp_path, timeout_s=0.3)
    async with client(app, tokens["reader"]) as c:
        answer = await c.get("/slow")
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
    assert recorded[-1][2:] == ("/slow", 503)


async def test_an_unexpected_error_is_a_500_counted_and_named_by_its_request_id(
    tmp_path: Path, recorded: list[tuple[Any, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    app, tokens = make_app(tmp_path)
    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        async with client(app, tokens["reader"]) as c:
            answer = await c.get("/broken", headers={"X-Request-Id": "req-7"})
    assert answer.status_code == 500 and answer.json() == {
        "detail": "internal error (request id req-7)"
    }
    assert recorded[-1] == ("req-7", "GET", "/broken", 500)
    assert "a bug" in caplog.text  # the trace is in the replica's log, not the answer


@pytest.mark.parametrize(
    ("given", "kept"),
    [("req-42", True), ("a b", False), ("x" * 65, False), ("id=1 status=200", False), ("", False)],
)
async def test_a_callers_request_id_is_logged_only_in_a_safe_form(
    tmp_path: Path, recorded: list[tuple[Any, ...]], given: str, kept: bool
) -> None:
    app, tokens = make_app(tmp_path)
    async with client(app, tokens["reader"]) as c:
        await c.post("/echo", json={"n": 1}, headers={"X-Request-Id": given})
    rid = recorded[-1][0]
    assert (rid == given) is kept and gate.SAFE_ID.fullmatch(rid)


async def test_refusals_are_counted_too(tmp_path: Path, recorded: list[tuple[Any, ...]]) -> None:
    app, _ = make_app(tmp_path)
    async with client(app) as c:
        await c.post("/echo", json={"n": 1})
        await c.get("/nowhere")
    assert [r[2:] for r in recorded] == [("/echo", 401), ("unmatched", 401)]


async def test_every_authenticated_request_spends_and_costly_ones_spend_more(
    tmp_path: Path,
) -> None:
    app, tokens = make_app(tmp_path)  # 60 units a minute
    async with client(app, tokens["reader"]) as c:
        assert (await c.post("/echo", content=b"{bad")).status_code == 422  # spends 1
        assert (await c.post("/echo", json={"n": 50})).status_code == 200  # spends 50
        over = await c.post("/echo", json={"n": 10})
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    async with client(app, tokens["admin"]) as c:  # a fresh bucket
        whole = await c.post("/echo", json={"n": 61})
        assert whole.status_code == 429 and "more than the key's 60 a minute" in whole.text
        assert "retry-after" not in whole.headers  # waiting would not help


async def test_a_revoked_key_is_refused_and_an_added_one_taken_without_a_restart(
    tmp_path: Path,
) -> None:
    app, tokens = make_app(tmp_path, reload_s=0.2)
    file = tmp_path / "keys.json"
    async with client(app, tokens["reader"]) as c:
        assert (await c.post("/echo", json={"n": 1})).status_code == 200
        keys.revoke(file, "reader")
        added = keys.add(file, "late", ["search"], 60)
        await asyncio.sleep(0.3)
        assert (await c.post("/echo", json={"n": 1})).status_code == 401
        late = await c.post("/echo", json={"n": 1}, headers={"Authorization": f"Bearer {added}"})
        assert late.status_code == 200
        file.write_text("not json")  # a broken file keeps the last good set
        await asyncio.sleep(0.3)
        late = await c.post("/echo", json={"n": 1}, headers={"Authorization": f"Bearer {added}"})
        assert late.status_code == 200


async def test_docs_can_be_closed(tmp_path: Path) -> None:
    open_app, _ = make_app(tmp_path / "a")
    closed_app, _ = make_app(tmp_path / "b", docs=False)
    async with client(open_app) as c:
        assert (await c.get("/openapi.json")).status_code == 200  # no key needed
    async with client(closed_app) as c:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await c.get(path)).status_code == 404
    schema = json.loads(json.dumps(open_app.openapi()))
    assert schema["paths"]["/draw"]["post"][gate.SCOPE_FIELD] == ["generate"]
