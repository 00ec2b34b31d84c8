"""The audit log: who did what, when, and the outcome, for every job submission, promotion,
alias move, key change and refused request.

Append-only by construction, on the storage Weft already uses: each event is one small JSON
object of its own (`<log>/<day>/<time>-<random>.json`), created and never rewritten, so
writers on many hosts need no lock, a local folder and an S3 prefix behave alike, and a
bucket policy or object lock can make it tamper-evident. The log is `WEFT_AUDIT` (a folder or
`s3://` prefix), else `<WEFT_HOME>/audit`.

An event holds what its caller names and nothing else: a key's name, never the key; a spec's
path, never its content. Writing an event never fails the action it records: a log that
cannot be written is reported on the process's log, and the action goes on.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from weft import storage

AUDIT = "WEFT_AUDIT"
# Who acts, when not a key of the HTTP API: set by `weft submit` for the jobs it submits, so
# what a job does is the submitter's; else the operating-system user.
USER = "WEFT_USER"
Outcome = Literal["ok", "refused", "failed"]
log = logging.getLogger(__name__)


class Event(BaseModel):
    """One line of the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: datetime
    who: str
    action: str  # submit, stop, promote, alias, key.add, key.revoke, request
    target: str  # what it acted on: a job id, a model version, a key's name, a route
    outcome: Outcome
    detail: dict[str, str] = {}


def location() -> str:
    """The log's folder or S3 prefix."""
    from weft.tracking import data_dir

    return os.environ.get(AUDIT) or str(data_dir() / "audit")


def actor() -> str:
    """Who acts in this process: `WEFT_USER`, else the operating-system user."""
    return os.environ.get(USER) or getpass.getuser()


def record(
    action: str,
    target: str,
    outcome: Outcome = "ok",
    *,
    who: str | None = None,
    **detail: str,
) -> Event:
    """Append one event (its own object, never overwritten) and return it."""
    now = datetime.now(UTC)
    event = Event(
        when=now, who=who or actor(), action=action, target=target, outcome=outcome, detail=detail
    )
    name = f"{now:%Y-%m-%d}/{now:%H%M%S%f}-{uuid.uuid4().hex[:12]}.json"
    where = storage.resolve(location()).join(name)
    try:
        if where.is_s3:
            storage.write_bytes(where, event.model_dump_json().encode())
        else:
            os.makedirs(os.path.dirname(where.path), exist_ok=True)
            with open(where.path, "x") as out:  # created here or not at all
                out.write(event.model_dump_json())
    except (storage.StorageError, OSError) as err:
        log.error("audit: could not record %s %s in %s: %s", action, target, location(), err)
    return event


def read(since: datetime | None = None, limit: int | None = None) -> list[Event]:
    """The events, oldest first (those from `since` on); the last `limit` of them."""
    root = storage.resolve(location())
    events = []
    for day in storage.names(root):
        if since is not None and day < f"{since:%Y-%m-%d}":
            continue
        for name in storage.names(root.join(day)):
            if name.endswith(".json"):
                raw = storage.read_bytes(root.join(day, name))
                events.append(Event.model_validate(json.loads(raw)))
    events.sort(key=lambda e: e.when)
    if since is not None:
        events = [e for e in events if e.when >= since]
    return events[-limit:] if limit else events
