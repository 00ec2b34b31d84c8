"""The operator routes behind the gate: an operator's key moves an alias back to a version
that passed its gate and adds and revokes keys; a viewer's may not; each change is an audit
line naming the key that asked, never a key."""

from __future__ import annotations

from pathlib import Path

import httpx
import mlflow
import pytest
from fastapi import FastAPI

from tests.registry.test_promote import SPEC, trained_run
from weft import audit
from weft.registry.promote import promote
from weft.serve import admin, gate, keys

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FastAPI, dict[str, str]]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv(audit.AUDIT, str(tmp_path / "audit"))
    file = tmp_path / "keys.json"
    tokens = {role: keys.add(file, role, role=role) for role in ("operator", "viewer")}
    made = FastAPI()
    made.add_middleware(gate.Gate)
    made.include_router(admin.router)
    made.state.policy = gate.Policy(keys.Keyring(str(file), reload_s=0), True, 1 << 16, 5, 30)
    return made, tokens


def client(app: FastAPI, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_an_operator_rolls_an_alias_back_to_a_version_that_passed_its_gate(
    app: tuple[FastAPI, dict[str, str]], tmp_path: Path
) -> None:
    made, tokens = app
    promote(SPEC, trained_run(tmp_path, "first", val__loss=2.5, val__zero_shot_top1=0.4))
    promote(SPEC, trained_run(tmp_path, "second", val__loss=2.4, val__zero_shot_top1=0.45))
    promote(SPEC, trained_run(tmp_path, "worse", val__loss=2.6, val__zero_shot_top1=0.2))
    route = "/v1/models/clip-test/aliases/champion"
    async with client(made, tokens["viewer"]) as viewer:
        assert (await viewer.put(route, json={"version": "1"})).status_code == 403
    async with client(made, tokens["operator"]) as operator:
        back = await operator.put(route, json={"version": "1"})
        assert back.status_code == 200, back.text
        assert back.json() == {
            "model": "clip-test", "alias": "champion", "version": "1", "previous": "2"
        }  # fmt: skip
        failed = await operator.put(route, json={"version": "3"})
        assert failed.status_code == 422 and "did not pass its gate" in failed.json()["detail"]
        missing = await operator.put(route, json={"version": "9"})
        assert missing.status_code == 404
    champion = mlflow.MlflowClient().get_model_version_by_alias("clip-test", "champion")
    assert str(champion.version) == "1"
    moved = [e for e in audit.read() if e.action == "alias"][-1]
    assert (moved.who, moved.target, moved.detail) == (
        "key:operator", "clip-test@champion", {"to": "1", "previous": "2"}
    )  # fmt: skip


async def test_an_operator_adds_and_revokes_keys_and_the_new_key_works_at_once(
    app: tuple[FastAPI, dict[str, str]], tmp_path: Path
) -> None:
    made, tokens = app
    async with client(made, tokens["viewer"]) as viewer:
        refused = await viewer.post("/v1/keys", json={"name": "ci", "role": "researcher"})
        assert refused.status_code == 403
    async with client(made, tokens["operator"]) as operator:
        new = await operator.post("/v1/keys", json={"name": "ci", "role": "researcher"})
        assert new.status_code == 201, new.text
        key = new.json()["key"]
        assert new.json()["scopes"] == ["search", "generate", "train", "read"]
        again = await operator.post("/v1/keys", json={"name": "ci", "role": "viewer"})
        assert again.status_code == 409
        both = await operator.post("/v1/keys", json={"name": "x", "role": "viewer", "scopes": []})
        assert both.status_code == 422
    async with client(made, key) as ci:  # the new key: no restart, no redeploy
        assert (await ci.delete("/v1/keys/operator")).status_code == 403  # no keys scope
    async with client(made, tokens["operator"]) as operator:
        assert (await operator.delete("/v1/keys/ci")).status_code == 204
        assert (await operator.delete("/v1/keys/ci")).status_code == 404
    async with client(made, key) as ci:
        assert (await ci.delete("/v1/keys/operator")).status_code == 401  # revoked
    changes = [(e.action, e.target, e.who) for e in audit.read() if e.action.startswith("key.")]
    assert changes[-2:] == [("key.add", "ci", "key:operator"), ("key.revoke", "ci", "key:operator")]
    text = "\n".join(p.read_text() for p in (tmp_path / "audit").rglob("*.json"))
    assert key not in text and all(t not in text for t in tokens.values())
