"""The audit log: one object per event, never rewritten, read back in order; each audited
action (key changes, refused requests, promotions and alias moves) leaves its line, and no
line holds a secret. Job submissions and stops: tests/integration/test_cluster_jobs.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.s3server import S3Server
from tests.serve.test_gate import client, make_app
from weft import audit
from weft.serve import keys


@pytest.fixture(autouse=True)
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "audit"
    monkeypatch.setenv(audit.AUDIT, str(where))
    monkeypatch.setenv(audit.USER, "dana")
    return where


def every_line(where: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(where.rglob("*.json")))


def test_each_event_is_an_object_of_its_own_read_back_oldest_first(log: Path) -> None:
    first = audit.record("submit", "weft-train-a-1", kind="train")
    second = audit.record("stop", "weft-train-a-1", "failed", who="ops")
    files = sorted(log.rglob("*.json"))
    assert len(files) == 2 and all(f.parent.name == f"{first.when:%Y-%m-%d}" for f in files)
    events = audit.read()
    assert events == [first, second]
    assert (events[0].who, events[1].who) == ("dana", "ops")
    assert audit.read(since=second.when) == [second]
    assert audit.read(since=datetime.now(UTC) + timedelta(days=1)) == []


def test_key_changes_leave_lines_without_the_key(tmp_path: Path, log: Path) -> None:
    file = tmp_path / "keys.json"
    key = keys.add(file, "ci", role="researcher")
    keys.revoke(file, "ci")
    events = audit.read()
    assert [(e.action, e.target, e.who) for e in events] == [
        ("key.add", "ci", "dana"),
        ("key.revoke", "ci", "dana"),
    ]
    assert events[0].detail["role"] == "researcher"
    assert events[0].detail["scopes"] == "search,generate,train,read"
    assert key not in every_line(log) and keys.digest(key) not in every_line(log)


@pytest.mark.anyio
async def test_refused_requests_leave_lines_naming_the_key_never_its_secret(
    tmp_path: Path, log: Path
) -> None:
    app, tokens = make_app(tmp_path)
    async with client(app) as anonymous:
        assert (await anonymous.post("/echo", json={"n": 1})).status_code == 401
    async with client(app, tokens["reader"]) as reader:
        assert (await reader.post("/draw")).status_code == 403
        assert (await reader.post("/echo", json={"n": 1})).status_code == 200  # not audited
    async with client(app, "weft_not-a-key") as wrong:
        assert (await wrong.post("/echo", json={"n": 1})).status_code == 401
    refused = await _settled(log, 5)  # 2 key.add lines + 3 refusals, written off the loop
    lines = [(e.who, e.target, e.detail["status"]) for e in refused if e.action == "request"]
    assert sorted(lines) == [
        ("anonymous", "POST /echo", "401"),
        ("anonymous", "POST /echo", "401"),
        ("reader", "POST /draw", "403"),
    ]
    text = every_line(log)
    assert all(token not in text for token in tokens.values()) and "weft_not-a-key" not in text


async def _settled(log: Path, count: int) -> list[audit.Event]:
    import asyncio

    for _ in range(100):
        if len(list(log.rglob("*.json"))) >= count:
            break
        await asyncio.sleep(0.05)
    return audit.read()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.integration
def test_the_log_can_live_on_s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.new_bucket()
    for name, value in {
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(audit.AUDIT, f"s3://{bucket}/audit")
    audit.record("promote", "weft-clip/3", run="abc")
    audit.record("alias", "weft-clip@champion", to="3", previous="2")
    assert [e.action for e in audit.read()] == ["promote", "alias"]
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="audit/")["KeyCount"]
    assert listed == 2 and s3_server.secret_key not in str(audit.read())
