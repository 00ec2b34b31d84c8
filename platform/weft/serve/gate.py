"""What every HTTP request passes before a route sees it, as one ASGI middleware: the key
checked before a byte of the body is read, the body read up to its limit and within its
time whatever its transfer encoding, the answer within its time, and every answer (5xx
included) counted and logged under a request id that is safe to log.

Order, and the answer to each refusal:
1. `/docs`, `/redoc`, `/openapi.json` when closed (`docs: false`): 404. The search page's
   own files (routes marked PUBLIC_FIELD: they hold no data) need no key.
2. The key (when the app has a keys file): none or unknown 401, over its rate 429, without
   one of the route's scopes 403; each of these refusals goes to the audit log. Each
   authenticated request spends one unit of its key's rate; the route charges the rest of
   its cost once the body is parsed (`charge`).
3. The body: over `max_body_bytes` 413 (by its `Content-Length`, or as it is read when it is
   chunked), not arrived within `body_timeout_s` 408.
4. The answer: not ready within `timeout_s` 503 with `Retry-After`; an unexpected error 500
   with the request id, its trace in the replica's log.
Serve's proxy has its own `request_timeout_s`, but a caller can lift it with a header
(`x-request-timeout-seconds: 0`), so the limits that must hold are kept here.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Match

from weft import audit
from weft.serve import keys, telemetry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("ray.serve")
DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
# The key scope a route needs, from its OpenAPI extension (every route declares one), or
# that it is public (the page's static files).
SCOPE_FIELD = "x-weft-scope"
PUBLIC_FIELD = "x-weft-public"
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
RETRY_AFTER_S = 5


@dataclass
class Policy:
    """One ingress replica's limits and keys, as the app's args set them."""

    keyring: keys.Keyring | None
    docs: bool
    max_body_bytes: int
    body_timeout_s: float
    timeout_s: float
    limiter: keys.RateLimiter = field(default_factory=keys.RateLimiter)


class Refusal(Exception):
    """An answer given by the gate itself: status, detail and headers; `who` for a refusal
    of access (the key's name, or `anonymous`), which the audit log records."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
        who: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = headers or {}
        self.who = who


def request_id(scope: Scope) -> str:
    """The caller's `X-Request-Id` if it is a plain token (letters, digits, `._:-`, at most
    64), else a new one: a caller's id is written into log lines."""
    given = _header(scope, b"x-request-id")
    return given if SAFE_ID.fullmatch(given) else uuid.uuid4().hex


def caller(scope: Scope) -> str:
    """Who sent the request, as the audit log names them: `key:<name>`, or `anonymous` in an
    app without keys."""
    entry: keys.KeyEntry | None = scope.get("state", {}).get("key")
    return f"key:{entry.name}" if entry is not None else "anonymous"


def charge(scope: Scope, cost: float) -> None:
    """Spend a request's cost beyond the unit the gate took (a route calls it once the body
    is parsed and the work it asks for is known); over the key's rate a Refusal (429)."""
    entry: keys.KeyEntry | None = scope.get("state", {}).get("key")
    if entry is None or cost <= 1:
        return
    if cost > entry.per_minute:  # waiting would not help
        raise Refusal(
            429,
            f"key {entry.name}: this request costs {cost:g} units, more than the key's "
            f"{entry.per_minute} a minute; split it",
            who=entry.name,
        )
    _spend(scope["app"].state.policy, entry, cost - 1)


class Gate:
    """The ASGI middleware; the policy is the one the ingress replica set on the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id(scope)
        route, needs, public = _route(scope)
        policy: Policy = scope["app"].state.policy
        status = 500
        started = False

        async def sending(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            if not public:
                await _admit(scope, policy, needs)
            body = await _body(scope, receive, policy)
            async with asyncio.timeout(policy.timeout_s):
                await self.app(scope, _replay(body, receive), sending)
        except Refusal as refusal:
            if refusal.who is not None:
                _audit(refusal, scope["method"], route, rid)
            if not started:
                await _answer(sending, refusal.status, str(refusal), refusal.headers)
        except TimeoutError:
            if not started:
                detail = f"not answered within {policy.timeout_s:g} s; try again later"
                await _answer(sending, 503, detail, {"Retry-After": str(RETRY_AFTER_S)})
        except Exception:
            log.exception("request id=%s failed", rid)
            if not started:
                await _answer(sending, 500, f"internal error (request id {rid})", {})
        finally:
            ms = (time.perf_counter() - start) * 1e3
            telemetry.record(rid, scope["method"], route, status, ms)


def _audit(refusal: Refusal, method: str, route: str, rid: str) -> None:
    """Record a refused request in the audit log, off the event loop (the answer does not
    wait for it)."""
    record = functools.partial(
        audit.record,
        "request",
        f"{method} {route}",
        "refused",
        who=refusal.who,
        status=str(refusal.status),
        request_id=rid,
    )
    asyncio.get_running_loop().run_in_executor(None, record)


async def _admit(scope: Scope, policy: Policy, needs: list[keys.Scope]) -> None:
    """Refuses closed docs and requests without a key that may use the route."""
    path = scope["path"][len(scope.get("root_path", "")) :]
    if path in DOCS:
        if not policy.docs:
            raise Refusal(404, "Not Found")
        return
    if policy.keyring is None:
        return
    given = _header(scope, b"authorization")
    scheme, _, token = given.partition(" ")
    entries = await policy.keyring.entries()
    entry = keys.find(entries, token.strip()) if scheme.lower() == "bearer" else None
    if entry is None:
        raise Refusal(
            401,
            "Authorization: a valid `Bearer <key>` is required",
            {"WWW-Authenticate": "Bearer"},
            who="anonymous",
        )
    _spend(policy, entry, 1)
    if needs and not entry.allows(*needs):
        raise Refusal(
            403, f"key {entry.name}: lacks the {' or '.join(needs)} scope", who=entry.name
        )
    scope.setdefault("state", {})["key"] = entry


def _spend(policy: Policy, entry: keys.KeyEntry, cost: float) -> None:
    wait = policy.limiter.allow(entry, cost)
    if wait:
        raise Refusal(
            429,
            f"key {entry.name}: over {entry.per_minute} units a minute",
            {"Retry-After": str(max(1, math.ceil(wait)))},
            who=entry.name,
        )


async def _body(scope: Scope, receive: Receive, policy: Policy) -> bytes:
    """The whole body, read no further than the limit, within the body's time."""
    limit = policy.max_body_bytes
    length = _header(scope, b"content-length")
    if length and not length.isdigit():
        raise Refusal(400, "Content-Length: not a number of bytes")
    if length and int(length) > limit:
        raise Refusal(413, f"body: over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(policy.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refusal(400, "body: the client went away")  # nobody reads it
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise Refusal(413, f"body: over the limit of {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise Refusal(408, f"body: not received within {policy.body_timeout_s:g} s") from None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the connection says."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _route(scope: Scope) -> tuple[str, list[keys.Scope], bool]:
    """The route's template (a bounded metric tag), the key scopes it takes (any one), and
    whether it is public."""
    for route in _leaves(scope["app"].routes):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            extra = getattr(route, "openapi_extra", None) or {}
            path = getattr(route, "path", "unmatched")
            return path, list(extra.get(SCOPE_FIELD, [])), bool(extra.get(PUBLIC_FIELD))
    return "unmatched", [], False


def _leaves(routes: list[Any]) -> Iterator[Any]:
    """The routes themselves, also those of included routers (FastAPI keeps an included
    router as one node; Serve's class-based ingress includes its routes so)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaves(included.routes)
        else:
            yield route


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
