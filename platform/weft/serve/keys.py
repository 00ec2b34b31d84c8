"""API keys: stored as SHA-256 hashes with a name, scopes and a request rate; the key itself
is shown once, when `weft keys add` makes it, and never stored, logged or returned again.

A key is 32 random bytes (URL-safe base64, prefixed `weft_`), so a plain SHA-256 of it is
as hard to reverse as the key is to guess; lookups compare hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, TypeAdapter, ValidationError

from weft import storage
from weft.specs import SpecError, _Spec

Scope = Literal["search", "generate", "admin"]
PREFIX = "weft_"


class KeyEntry(_Spec):
    """A key as stored: its name, the hash of the key, what it may do and how often."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[Scope] = Field(min_length=1)
    per_minute: int = Field(default=600, ge=1, description="Requests a minute, per replica.")

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


ENTRIES = TypeAdapter(list[KeyEntry])


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load(uri: str | Path) -> list[KeyEntry]:
    """The entries of a keys file (local or s3://); a missing or malformed one is a SpecError
    naming it."""
    try:
        return ENTRIES.validate_json(storage.read_bytes(storage.resolve(str(uri))))
    except storage.StorageError as err:
        raise SpecError(f"keys: cannot read {err}; make one with `weft keys add`") from None
    except ValidationError as err:
        raise SpecError(f"keys: {uri} is not a keys file ({err.errors()[0]['msg']})") from None


def add(uri: str | Path, name: str, scopes: list[Scope], per_minute: int) -> str:
    """Make a key, store its hash under `name` in the keys file (local, readable by its
    owner only, or s3://; created if need be), and return the key: the only time it is
    seen."""
    where = storage.resolve(str(uri))
    entries = load(uri) if storage.exists(where) else []
    if any(e.name == name for e in entries):
        raise SpecError(f"name: a key named {name} is already in {uri}")
    key = PREFIX + secrets.token_urlsafe(32)
    entries.append(KeyEntry(name=name, sha256=digest(key), scopes=scopes, per_minute=per_minute))
    data = json.dumps([e.model_dump() for e in entries], indent=2).encode()
    if not where.is_s3:  # made readable by its owner only before anything is written
        Path(where.path).parent.mkdir(parents=True, exist_ok=True)
        Path(where.path).touch(mode=0o600)
        Path(where.path).chmod(0o600)
    try:
        storage.write_bytes(where, data)
    except storage.StorageError as err:
        raise SpecError(f"keys: cannot write {err}") from None
    return key


def find(entries: list[KeyEntry], key: str) -> KeyEntry | None:
    """The entry whose hash is the key's, compared in constant time."""
    wanted = digest(key)
    found = None
    for entry in entries:
        if hmac.compare_digest(entry.sha256, wanted):
            found = entry
    return found


@dataclass
class RateLimiter:
    """A token bucket per key name: `per_minute` requests a minute, in bursts up to that."""

    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, when

    def allow(self, entry: KeyEntry) -> float:
        """0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        rate = entry.per_minute / 60
        tokens, then = self.buckets.get(entry.name, (float(entry.per_minute), now))
        tokens = min(float(entry.per_minute), tokens + (now - then) * rate)
        if tokens < 1:
            self.buckets[entry.name] = (tokens, now)
            return (1 - tokens) / rate
        self.buckets[entry.name] = (tokens - 1, now)
        return 0.0
