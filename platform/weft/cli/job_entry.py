"""What a submitted job runs: `python -m weft.cli.job_entry <weft arguments>`, the same `weft`
command as at the submitter's terminal.

Where the cluster runs on the submitter's machine (a local head node), the submitter's folder
is visible here, with the very spec file (same inode and modification time): the command
runs there, so local paths in the spec (`.weft/demo/raw`) are the submitter's. Elsewhere it
runs in the job's copy of that folder, where local paths name the copy's files: a cluster's
data is on S3.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from weft.jobs.submit import JOB_ID, SUBMIT_DIR, SUBMIT_STAT


def submitter_folder(spec: str) -> Path | None:
    """The submitter's folder, if this node sees it with the submitted spec file in it."""
    folder, stat = os.environ.get(SUBMIT_DIR), os.environ.get(SUBMIT_STAT)
    if not folder or not stat:
        return None
    try:
        found = (Path(folder) / spec).stat()
    except OSError:
        return None
    return Path(folder) if f"{found.st_ino}:{found.st_mtime_ns}" == stat else None


def main(arguments: list[str]) -> None:
    job = os.environ.get(JOB_ID, "?")
    here = submitter_folder(arguments[-1]) if arguments else None
    if here is not None:
        os.chdir(here)
        print(f"job {job}: weft {' '.join(arguments)} in {here} (the submitter's folder)")
    else:
        print(
            f"job {job}: weft {' '.join(arguments)} in the job's copy of the submitted folder "
            f"({Path.cwd()})"
        )
    sys.stdout.flush()
    from weft.cli import main as weft

    sys.argv = ["weft", *arguments]
    weft()


if __name__ == "__main__":
    main(sys.argv[1:])
