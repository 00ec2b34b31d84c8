"""The jobs on a cluster, through Ray's job submission API: a client for the dashboard's
address (Ray's token included), each job as Weft shows it (with the MLflow runs it started
and its output), its logs streamed as they come, and a stop.

The address is `--address`, else `RAY_ADDRESS` when it is the dashboard's HTTP address, else
the local head's `http://127.0.0.1:8265`. With token authentication on (Ray's default for a
new cluster), the client sends the token it finds: `RAY_AUTH_TOKEN`, the file
`RAY_AUTH_TOKEN_PATH` names, or `~/.ray/auth_token`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weft import audit
from weft.jobs.submit import METADATA_PREFIX, first_line
from weft.specs import SpecError

LOCAL = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def address(given: str | None = None) -> str:
    """The dashboard address to use: as given, else `RAY_ADDRESS` if it is an HTTP one, else
    the local head's."""
    if given:
        return given
    env = os.environ.get("RAY_ADDRESS", "")
    return env if env.startswith(("http://", "https://")) else LOCAL


def this_cluster() -> str | None:
    """The job API's address of the cluster this process runs in (a Serve replica's), if
    that cluster runs a dashboard."""
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get

    found = _internal_kv_get(
        ray_constants.DASHBOARD_ADDRESS, namespace=ray_constants.KV_NAMESPACE_DASHBOARD
    )
    return f"http://{found.decode()}" if found else None


def client(where: str) -> Any:
    """A JobSubmissionClient for the dashboard at `where`; one that cannot be reached or
    refuses the token is a SpecError naming the address and what to do."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    _send_token()
    # Ray logs each packing step and each closed log stream at INFO, and at WARNING which
    # folders it leaves out by default: the command says what was sent.
    logging.getLogger("ray.dashboard").setLevel(logging.WARNING)
    logging.getLogger("ray._private.runtime_env").setLevel(logging.ERROR)
    try:
        return JobSubmissionClient(where)
    except AuthenticationError:
        raise SpecError(
            f"address: {where} wants Ray's token: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) "
            "to the cluster's, as `ray get-auth-token` prints it on the head node"
        ) from None
    except (ConnectionError, OSError, RuntimeError, ValueError) as err:
        raise SpecError(
            f"address: no Ray dashboard answers at {where} ({first_line(err)}); start one with "
            "`ray start --head`, or pass --address / set RAY_ADDRESS to the dashboard's address"
        ) from None


def _send_token() -> None:
    """Turn on Ray's token authentication in this process when a token is found and
    `RAY_AUTH_MODE` is not set, as `ray.init` does for a cluster it joins (quietly: Ray
    warns that it did)."""
    from ray._private.authentication import authentication_token_setup as setup

    quiet = logging.getLogger(setup.__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        quiet.setLevel(level)


@dataclass(frozen=True)
class JobView:
    """A job as `weft jobs` shows it."""

    id: str
    status: str
    kind: str
    name: str
    user: str
    started: datetime | None
    ended: datetime | None
    message: str
    exit_code: int | None
    output: str | None
    entrypoint: str

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def reason(self) -> str:
        """Why it ended as it did, in a line: Weft's own `error:` lines in the log tail that
        Ray's message quotes, else the message's first line."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        return " ".join(errors)[:500] if errors else (lines[0][:500] if lines else "")

    @property
    def code(self) -> int:
        """The exit code `weft` ends with for this job: 0 when it succeeded, else its driver's
        (a signal as 128 + its number), else 1."""
        if self.status == "SUCCEEDED":
            return 0
        if self.exit_code:
            return self.exit_code if self.exit_code > 0 else 128 - self.exit_code
        return 1


def _view(details: Any) -> JobView:
    shown = {
        k.removeprefix(METADATA_PREFIX): v
        for k, v in (details.metadata or {}).items()
        if k.startswith(METADATA_PREFIX)
    }
    return JobView(
        id=details.submission_id or details.job_id or "?",
        status=str(details.status),
        kind=shown.get("kind", "-"),
        name=shown.get("name", "-"),
        user=shown.get("user", "-"),
        started=_time(details.start_time),
        ended=_time(details.end_time),
        message=(details.message or "").strip(),
        exit_code=details.driver_exit_code,
        output=shown.get("output"),
        entrypoint=details.entrypoint,
    )


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def jobs(api: Any) -> list[JobView]:
    """Every submitted job the cluster knows, newest first."""
    views = [_view(d) for d in api.list_jobs() if d.submission_id]
    return sorted(views, key=lambda v: v.started or datetime.min.replace(tzinfo=UTC), reverse=True)


def status(api: Any, job_id: str) -> JobView:
    try:
        return _view(api.get_job_info(job_id))
    except RuntimeError as err:
        if "does not exist" in str(err) or "404" in str(err):
            raise SpecError(f"job: no job {job_id} on this cluster") from None
        raise


def mlflow_runs(job_id: str) -> list[str]:
    """The MLflow runs the job started (tagged `weft.job` by its run context), oldest first."""
    from mlflow import MlflowClient

    from weft.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())  # leaves the process's MLflow as it is
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`weft.job` = '{job_id}'", order_by=["start_time ASC"]
    )
    return [r.info.run_id for r in runs]


def stream(api: Any, job_id: str, write: Callable[[str], object]) -> JobView:
    """Write the job's logs as they come until it ends; its final state."""
    status(api, job_id)  # an unknown id is an error before anything waits

    async def tail() -> None:
        async for chunk in api.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())
    view = status(api, job_id)
    while not view.done:  # the stream can end a moment before the status does
        time.sleep(0.2)
        view = status(api, job_id)
    return view


def stop(api: Any, job_id: str, where: str) -> bool:
    """Ask the job to stop; whether it was running. The audit log gets a line."""
    status(api, job_id)
    stopped = bool(api.stop_job(job_id))
    audit.record("stop", job_id, "ok" if stopped else "failed", address=where)
    return stopped
