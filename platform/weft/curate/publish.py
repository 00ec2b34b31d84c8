"""A curation output is published whole: readers see the previous complete output or the new
one, never a mix, whatever stops a run (Ctrl-C, a crash), on local disks and on S3.

    <output>/versions/<run>/   one run's output: data/, removed/, quarantine/ (in a dry run
                               decisions/), report.json, report.md
    <output>/_PUBLISHED        {"run", "at"}: the published version. Written last, in one
                               atomic step (a rename on a local disk, one PUT on S3): the commit
    <output>/_IN_PROGRESS      {"run", "at"}: a run has started and not yet published; one that
                               died leaves it behind, and the next run warns and replaces it

A reader reads `_PUBLISHED`, then only the version it names: `published(loc)`. An output
without `_PUBLISHED` (written before versions) is read as it is. After the commit the run
deletes the versions it replaced (and an interrupted run's): a reader still in one then fails
rather than see a mix. On a local disk `<output>/data`,
`removed`, `quarantine`, `report.json` and `report.md` are also symlinks through
`<output>/current`, which the commit swaps to the new version in one rename, so tools that
know nothing of `_PUBLISHED` read a complete output too. One run at a time may write an output.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from weft import storage

log = logging.getLogger(__name__)
PUBLISHED = "_PUBLISHED"
IN_PROGRESS = "_IN_PROGRESS"
VERSIONS = "versions"
CURRENT = "current"


class Stamp(BaseModel):
    """A run, and when it started (`_IN_PROGRESS`) or was published (`_PUBLISHED`)."""

    run: str = Field(pattern=r"^[0-9A-Za-z-]+$")
    at: datetime


@dataclass(frozen=True)
class Run:
    """A run writing a new version of the output at `out`."""

    out: storage.Location
    id: str

    @property
    def version(self) -> storage.Location:
        return self.out.join(VERSIONS, self.id)


def published(out: storage.Location) -> storage.Location:
    """Where the published output at `out` lies: the version `_PUBLISHED` names, else `out`."""
    stamp = _read_stamp(out.join(PUBLISHED))
    return out if stamp is None else out.join(VERSIONS, stamp.run)


def interrupted(out: storage.Location) -> Stamp | None:
    """The run that started writing at `out` and never published, if any."""
    return _read_stamp(out.join(IN_PROGRESS))


def begin(out: storage.Location) -> Run:
    """Start a run at `out`, which must be writable; warns of a run that never published."""
    storage.ensure_writable(out)
    stale = interrupted(out)
    if stale is not None:
        log.warning(
            "%s: run %s, started %s, did not finish; it was never published, and this run "
            "replaces it",
            out.uri,
            stale.run,
            f"{stale.at:%Y-%m-%d %H:%M:%S %Z}",
        )
    now = datetime.now(UTC)
    run = Run(out, f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}")
    _write_stamp(out.join(IN_PROGRESS), Stamp(run=run.id, at=now))
    return run


def commit(run: Run, names: Sequence[str]) -> None:
    """Publish the run's version, whose files and folders are `names`: `_PUBLISHED` first
    (the commit), then the local symlinks; then delete what it replaced: other versions, an
    output written before versions (on S3; locally the symlinks replace it) and the run's
    `_IN_PROGRESS`."""
    _write_stamp(run.out.join(PUBLISHED), Stamp(run=run.id, at=datetime.now(UTC)))
    if run.out.is_s3:
        for name in names:
            storage.delete(run.out.join(name))
    else:
        _link(run, names)
    for name in storage.names(run.out.join(VERSIONS)):
        if name != run.id:
            storage.delete(run.out.join(VERSIONS, name))
    storage.delete(run.out.join(IN_PROGRESS))


def _read_stamp(loc: storage.Location) -> Stamp | None:
    if not storage.exists(loc):
        return None
    try:
        return Stamp.model_validate_json(storage.read_bytes(loc))
    except ValidationError as err:
        msg = err.errors(include_url=False)[0]["msg"]
        raise storage.StorageError(f"{loc.uri}: not a Weft run stamp ({msg})") from None


def _write_stamp(loc: storage.Location, stamp: Stamp) -> None:
    storage.write_atomic(loc, stamp.model_dump_json().encode())


def _link(run: Run, names: Sequence[str]) -> None:
    """Point `current` at the run's version in one rename, and each of `names` through it
    (an output written before versions holds folders there: they are replaced, once)."""
    root = Path(run.out.path)
    with storage.storage_errors(run.out.uri):
        _symlink(root / CURRENT, Path(VERSIONS, run.id))
        for name in names:
            entry, target = root / name, Path(CURRENT, name)
            if entry.is_symlink() and entry.readlink() == target:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            _symlink(entry, target)


def _symlink(link: Path, target: Path) -> None:
    """Make `link` point at `target`, replacing what was there in one rename."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    tmp.symlink_to(target)
    os.replace(tmp, link)
