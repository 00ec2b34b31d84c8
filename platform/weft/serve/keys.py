"""API keys: stored as SHA-256 hashes with a name, scopes and a request rate; the key itself
is shown once, when `weft keys add` makes it, and never stored, logged or returned again.

A key is 32 random bytes (URL-safe base64, prefixed `weft_`), so a plain SHA-256 of it is
as hard to reverse as the key is to guess; lookups compare hashes in constant time. The file
is replaced whole on every change (readers see the old or the new one), and a running app
re-reads it within `Keyring.reload_s`: a key added or revoked takes effect without a redeploy.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError

from weft import audit, storage
from weft.specs import SpecError, _Spec

# What a key may do: search (embeddings, search, captions, the served models), generate,
# train (submit training jobs and read them), promote (move aliases), keys (manage keys),
# read (models, jobs and metrics), admin (everything).
Scope = Literal["search", "generate", "train", "promote", "keys", "read", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
Role = Literal["admin", "researcher", "operator", "viewer"]
# Each role is a named set of scopes.
ROLES: dict[Role, tuple[Scope, ...]] = {
    "admin": ("admin",),
    "researcher": ("search", "generate", "train", "read"),
    "operator": ("promote", "keys", "read", "search"),
    "viewer": ("search", "read"),
}
PREFIX = "weft_"
log = logging.getLogger("ray.serve")


class KeyEntry(_Spec):
    """A key as stored: its name, the hash of the key, what it may do and how often."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[Scope] = Field(min_length=1)
    role: Role | None = Field(default=None, description="The role its scopes came from.")
    per_minute: int = Field(default=600, ge=1, description="Requests a minute, per replica.")

    def allows(self, *wanted: Scope) -> bool:
        """Whether the key has one of the `wanted` scopes (admin has them all)."""
        return "admin" in self.scopes or any(scope in self.scopes for scope in wanted)


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


def add(
    uri: str | Path,
    name: str,
    scopes: list[Scope] | None = None,
    per_minute: int = 600,
    role: Role | None = None,
    *,
    who: str | None = None,
) -> str:
    """Make a key with `scopes`, or those of `role`; store its hash under `name` in the keys
    file (created if need be), and return the key: the only time it is seen. The audit log
    records the change (the name and scopes, never the key) as `who`'s (this process's user
    by default)."""
    if role is not None:
        scopes = list(ROLES[role])
    if not scopes:
        raise SpecError("scopes: give scopes or a role")
    where = storage.resolve(str(uri))
    entries = load(uri) if storage.exists(where) else []
    if any(e.name == name for e in entries):
        raise SpecError(f"name: a key named {name} is already in {uri}")
    key = PREFIX + secrets.token_urlsafe(32)
    entry = KeyEntry(name=name, sha256=digest(key), scopes=scopes, role=role, per_minute=per_minute)
    _store(where, [*entries, entry])
    audit.record("key.add", name, who=who, scopes=",".join(scopes), role=role or "-", file=str(uri))
    return key


def revoke(uri: str | Path, name: str, *, who: str | None = None) -> None:
    """Remove the key named `name` from the keys file; running apps refuse it within
    `Keyring.reload_s`."""
    entries = load(uri)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        raise SpecError(f"name: no key named {name} in {uri}")
    _store(storage.resolve(str(uri)), kept)
    audit.record("key.revoke", name, who=who, file=str(uri))


def _store(where: storage.Location, entries: list[KeyEntry]) -> None:
    """Replace the keys file whole: on S3 a PUT is that; a local file is written beside,
    readable by its owner only, and renamed over the old one."""
    data = json.dumps([e.model_dump() for e in entries], indent=2).encode()
    try:
        if where.is_s3:
            storage.write_bytes(where, data)
            return
        folder = Path(where.path).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".keys-", suffix=".tmp")  # mode 0600
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, where.path)
    except (storage.StorageError, OSError) as err:
        raise SpecError(f"keys: cannot write {where.uri}: {err}") from None


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
    """A token bucket per key name: `per_minute` units a minute, in bursts up to that. A
    request costs one unit, or more for more work (each image, each ten generation steps)."""

    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, when

    def allow(self, entry: KeyEntry, cost: float = 1.0) -> float:
        """0 if a request of `cost` units may go now (and spend them), else the seconds until
        it may."""
        now = time.monotonic()
        rate = entry.per_minute / 60
        tokens, then = self.buckets.get(entry.name, (float(entry.per_minute), now))
        tokens = min(float(entry.per_minute), tokens + (now - then) * rate)
        if tokens < cost:
            self.buckets[entry.name] = (tokens, now)
            return (cost - tokens) / rate
        self.buckets[entry.name] = (tokens - cost, now)
        return 0.0


class Keyring:
    """The keys a running app accepts: the keys file, read again when `reload_s` has passed
    since the last look (off the event loop). A file that cannot be read or parsed then
    keeps the last good set, with a warning in the replica's log."""

    def __init__(self, uri: str, reload_s: float = 2.0) -> None:
        self.uri = uri
        self.reload_s = reload_s
        self.current = load(uri)  # at start a bad file is the deploy's error
        self.checked = time.monotonic()
        self.lock = asyncio.Lock()

    async def entries(self) -> list[KeyEntry]:
        if time.monotonic() - self.checked >= self.reload_s:
            async with self.lock:  # one look at a time; the others take its result
                if time.monotonic() - self.checked >= self.reload_s:
                    self.current = await asyncio.to_thread(self._reload)
                    self.checked = time.monotonic()
        return self.current

    def _reload(self) -> list[KeyEntry]:
        try:
            return load(self.uri)
        except SpecError as err:
            log.warning("keys: kept the last good set: %s", err)
            return self.current
