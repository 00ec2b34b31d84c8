"""A spec sent to a Ray cluster as a Ray Job: the same `weft` command, run there by
`weft.cli.job_entry`, with Weft's code and the project's files in its runtime environment.

What travels, and how:
- the code: the `weft` package as a `py_modules` entry, so the job runs the submitter's code
  on the cluster image's dependencies;
- the files: the working directory (the project folder, or a folder holding an inline spec)
  as `working_dir`, less what `.gitignore`, `.rayignore` and Ray's own excludes leave out;
- the settings (MLflow's URI, the S3 endpoint and region, the audit log) and credentials (S3
  keys, MLflow's token) as `env_vars`: never in the entrypoint or the job's metadata, which
  Ray shows; the dashboard shows the variables' names with their values redacted;
- who submitted it and the job's id, as `WEFT_USER` and an MLflow run context: every MLflow
  run the job starts is tagged `weft.job`, which is how `weft jobs status` finds it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

import weft
from weft import audit
from weft.jobs.kinds import Kind, command, kind_of
from weft.specs import SpecError, read_yaml

# Passed to the job as they are set here: where runs, data and the audit log live.
SETTINGS = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "WEFT_HOME",
    audit.AUDIT,
)
# Passed the same way, and never printed: Ray's dashboard redacts every env_vars value.
SECRETS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
JOB_ID = "WEFT_JOB_ID"
# The submitter's folder, and the spec file's identity there (inode and modification time):
# where the cluster runs on the submitter's machine, the job runs in that folder itself, so
# local paths in the spec mean what they mean to `weft <command>` there.
SUBMIT_DIR = "WEFT_SUBMIT_DIR"
SUBMIT_STAT = "WEFT_SUBMIT_STAT"
# On top of .gitignore, .rayignore and Ray's own (.git, .venv, __pycache__): for py_modules,
# which read no ignore file above their own folder.
EXCLUDES = ["__pycache__/", "*.pyc"]
METADATA_PREFIX = "weft."


@dataclass(frozen=True)
class Job:
    """A spec ready to go: what runs, where its files come from, who sends it."""

    id: str
    kind: Kind
    spec: str  # the spec's path inside `root`
    name: str
    output: str | None  # the spec's `output`, as written there
    root: Path  # the job's working directory, sent with it
    user: str
    local: bool  # `root` is the submitter's own folder (not a temporary one)
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def arguments(self) -> list[str]:
        return command(self.kind, self.spec)


def prepare(spec_path: Path, kind: Kind | None = None, root: Path | None = None) -> Job:
    """A job for the spec file `spec_path`, which must lie in `root` (the current folder):
    that folder is the job's working directory."""
    root = (root or Path.cwd()).resolve()
    path = spec_path.resolve()
    if not path.is_file():
        raise SpecError(f"{spec_path}: no such spec file")
    if not path.is_relative_to(root):
        raise SpecError(
            f"{spec_path}: outside {root}, the folder the job takes with it; run `weft submit` "
            "from the project's folder"
        )
    spec = read_yaml(path)
    if not isinstance(spec, dict):
        raise SpecError(f"{spec_path}: not a mapping of fields")
    stat = path.stat()
    job = _job(spec, kind or kind_of(spec, str(spec_path)), str(path.relative_to(root)), root)
    env = {SUBMIT_DIR: str(root), SUBMIT_STAT: f"{stat.st_ino}:{stat.st_mtime_ns}"}
    return replace(job, local=True, env=env)


def prepare_inline(spec: dict[str, Any], kind: Kind, user: str) -> Job:
    """A job for a spec given as data (the HTTP API's): written alone into a new temporary
    folder, which is the job's working directory. Credentials in it are refused: a job
    takes the cluster's, or those of its submitter's environment."""
    storage = spec.get("storage")
    if isinstance(storage, dict) and {"secret_access_key", "session_token"} & set(storage):
        raise SpecError(
            "spec.storage: credentials are not accepted in a submitted spec; the job uses "
            "the cluster's"
        )
    root = Path(tempfile.mkdtemp(prefix="weft-job-"))
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return _job(spec, kind, "spec.yaml", root, user)


def _job(spec: dict[str, Any], kind: Kind, path: str, root: Path, user: str | None = None) -> Job:
    name = str(spec.get("name") or Path(path).stem)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "job"
    output = spec.get("output")
    return Job(
        id=f"weft-{kind}-{slug}-{secrets.token_hex(3)}",
        kind=kind,
        spec=path,
        name=name,
        output=output if isinstance(output, str) else None,
        root=root,
        user=user or audit.actor(),
        local=False,
    )


def package() -> Path:
    """The `weft` package's folder: the code the job runs."""
    return Path(weft.__file__).parent


def runtime_env(job: Job) -> dict[str, Any]:
    """The job's runtime environment: its files, Weft's code, settings and credentials."""
    env = {name: os.environ[name] for name in (*SETTINGS, *SECRETS) if os.environ.get(name)}
    env.update(job.env)
    env[JOB_ID] = job.id
    env[audit.USER] = job.user
    env["MLFLOW_RUN_CONTEXT"] = json.dumps({"weft.job": job.id, "weft.user": job.user})
    return {
        "working_dir": str(job.root),
        "py_modules": [str(package())],
        "excludes": EXCLUDES,
        "env_vars": env,
    }


def metadata(job: Job) -> dict[str, str]:
    """What Ray shows beside the job (no setting, no credential)."""
    shown = {"kind": job.kind, "spec": job.spec, "name": job.name, "user": job.user}
    if job.output:
        shown["output"] = job.output
    return {METADATA_PREFIX + k: v for k, v in shown.items()}


def entrypoint(job: Job) -> str:
    return shlex.join(["python", "-m", "weft.cli.job_entry", *job.arguments])


def sizes(job: Job) -> dict[str, int]:
    """The compressed size in bytes of what the job uploads: its working directory and the
    code, packed as Ray packs them (Ray skips an upload the cluster holds already)."""
    from ray._private.ray_constants import get_runtime_env_default_excludes
    from ray._private.runtime_env.packaging import create_package

    env = runtime_env(job)
    excludes = [*get_runtime_env_default_excludes(), *EXCLUDES]
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder, parent in (
            ("working_dir", env["working_dir"], False),
            ("code", env["py_modules"][0], True),
        ):
            target = Path(tmp) / f"{label}.zip"
            create_package(
                folder, target, include_gitignore=True, include_parent_dir=parent, excludes=excludes
            )
            found[label] = target.stat().st_size
    return found


def send(client: Any, job: Job, address: str) -> str:
    """Submit `job` through `client` (a JobSubmissionClient); its id. The audit log gets a
    line either way."""
    try:
        job_id: str = client.submit_job(
            entrypoint=entrypoint(job),
            submission_id=job.id,
            runtime_env=runtime_env(job),
            metadata=metadata(job),
        )
    except Exception as err:
        audit.record(
            "submit", job.id, "failed", who=job.user, kind=job.kind, spec=job.spec,
            address=address, error=type(err).__name__,
        )  # fmt: skip
        raise SpecError(f"address: {address} refused the job: {first_line(err)}") from None
    audit.record("submit", job_id, who=job.user, kind=job.kind, spec=job.spec, address=address)
    return job_id


def first_line(err: BaseException) -> str:
    """An error's first line, at most 300 characters: what a message quotes of it."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
