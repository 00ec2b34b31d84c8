"""`weft serve`: a Serve config (Ray's own format, as `serve run` / `serve deploy` read it)
deployed on a local Ray with the HTTP proxy on 127.0.0.1.

Deploying goes through the Serve controller exactly as `serve run CONFIG` does, so the
config's per-deployment settings (replicas, autoscaling, resources) apply and the app is
built by the controller from its `import_path` and `args`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve._private import api as serve_api  # what `serve run CONFIG` deploys with
from ray.serve.schema import ApplicationStatus, ServeDeploySchema

from weft import cluster
from weft.specs import SpecError, format_validation_error, read_yaml
from weft.tracking import tracking_uri

READY_TIMEOUT_S = 300


def load_config(path: Path) -> ServeDeploySchema:
    """A Serve config file, validated by Ray's own schema; errors name the field."""
    data = read_yaml(path)
    try:
        return ServeDeploySchema.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(str(path), err)) from None


def start(config: ServeDeploySchema, port: int | None = None) -> list[str]:
    """Deploy every app of `config` on the local Ray (started on loopback if need be), wait
    until each runs, and return their URLs; an app that fails to deploy raises its error."""
    cluster.connect()
    http = config.http_options.model_dump() | {"host": "127.0.0.1"}
    if port is not None:
        http["port"] = port
    for app in config.applications:  # replicas reach this tracking store, wherever they run
        env = dict((app.runtime_env or {}).get("env_vars", {}))
        env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
        app.runtime_env = (app.runtime_env or {}) | {"env_vars": env}
    client = serve_api.serve_start(http_options=http)
    client.deploy_apps(config, _blocking=False)
    _wait_running([app.name for app in config.applications])
    return [
        f"http://127.0.0.1:{http['port']}{app.route_prefix or '/'}" for app in config.applications
    ]


def _wait_running(names: list[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        apps = serve.status().applications
        states: dict[str, Any] = {n: apps.get(n) for n in names}
        failed = {
            n: s for n, s in states.items() if s and s.status == ApplicationStatus.DEPLOY_FAILED
        }
        if failed:  # removed, so that a corrected config deploys afresh
            name, state = next(iter(failed.items()))
            reason = _reason(state)
            for failed_name in failed:
                serve.delete(failed_name)
            raise SpecError(f"app {name}: failed to deploy: {reason}")
        if all(s and s.status == ApplicationStatus.RUNNING for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"apps {', '.join(names)} not running after {READY_TIMEOUT_S} s")
        time.sleep(0.5)


def _reason(app: Any) -> str:
    """Why the app failed: its failed deployments' errors (the last line of each message,
    where Ray puts the raised error), else the app's own message."""
    messages = [d.message for d in app.deployments.values() if d.message] or [app.message]
    lines = [_last_line(m) for m in messages]
    return "; ".join(line for line in lines if line) or "unknown error"


def _last_line(message: str) -> str:
    """The raised error's own message: `weft.specs.SpecError: index: ...` → `index: ...`."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1]) if lines else ""


def stop() -> None:
    serve.shutdown()
