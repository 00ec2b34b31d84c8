"""API keys are stored hashed, found in constant time, scoped, and rate limited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.s3server import S3Server
from weft.serve import keys
from weft.specs import SpecError


def test_a_key_is_stored_as_its_hash_and_found_by_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = keys.add(path, "app", ["search"], 60)
    other = keys.add(path, "ops", ["admin"], 60)
    assert key.startswith("weft_") and key != other
    stored = path.read_text()
    assert key not in stored and keys.digest(key) in stored
    assert path.stat().st_mode & 0o777 == 0o600
    entries = keys.load(path)
    found = keys.find(entries, key)
    assert found is not None and found.name == "app"
    assert keys.find(entries, key + "x") is None
    assert found.allows("search") and not found.allows("generate")
    admin = keys.find(entries, other)
    assert admin is not None and admin.allows("generate")  # admin may do everything


def test_a_repeated_name_and_a_bad_file_are_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys.add(path, "app", ["search"], 60)
    with pytest.raises(SpecError, match="name: a key named app is already in"):
        keys.add(path, "app", ["search"], 60)
    path.write_text(json.dumps([{"name": "x", "sha256": "not a hash", "scopes": ["search"]}]))
    with pytest.raises(SpecError, match="is not a keys file"):
        keys.load(path)
    with pytest.raises(SpecError, match="make one with `weft keys add`"):
        keys.load(tmp_path / "missing.json")


@pytest.mark.integration
def test_a_keys_file_on_s3_is_written_and_read_like_a_local_one(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    uri = f"s3://{s3_server.new_bucket()}/serve/keys.json"
    key = keys.add(uri, "app", ["search"], 60)
    keys.add(uri, "ops", ["admin"], 60)
    found = keys.find(keys.load(uri), key)
    assert found is not None and found.name == "app"
    with pytest.raises(SpecError, match=r"keys: cannot read s3://.*/absent\.json"):
        keys.load(uri.replace("keys.json", "absent.json"))


def test_the_rate_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    entry = keys.KeyEntry(name="k", sha256="0" * 64, scopes=["search"], per_minute=3)
    limiter = keys.RateLimiter()
    assert [limiter.allow(entry) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow(entry)
    assert 19 < wait <= 20  # one request every 20 s
    limiter.buckets["k"] = (0.0, time.monotonic() - 20)  # 20 s later: one more
    assert limiter.allow(entry) == 0.0
