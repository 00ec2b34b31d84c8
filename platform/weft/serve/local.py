"""`weft serve`: a Serve config (Ray's own format, as `serve run` / `serve deploy` read it)
deployed on a local Ray with the HTTP proxy on 127.0.0.1.

Deploying goes through the Serve controller exactly as `serve run CONFIG` does, so the
config's per-deployment settings (replicas, autoscaling, resources) apply and the app is
built by the controller from its `import_path` and `args`.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve._private import api as serve_api  # what `serve run CONFIG` deploys with
from ray.serve.schema import ApplicationStatus, ServeDeploySchema

from weft import cluster
from weft.serve.app import unready
from weft.serve.spec import AppArgs
from weft.specs import SpecError, format_validation_error, parse_spec, read_yaml, unknown_fields
from weft.tracking import tracking_uri

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 300
BUILDER = "weft.serve.app:build"


def load_config(path: Path) -> ServeDeploySchema:
    """A Serve config file, checked by `parse_config`."""
    return parse_config(read_yaml(path), str(path))


def parse_config(data: object, source: str) -> ServeDeploySchema:
    """A Serve config, validated by Ray's own schema with unknown fields refused (Ray's
    schema drops them silently) and, for Weft's apps, by the app's args (a deployment the
    app does not make for them is named); errors name the field."""
    try:
        config = ServeDeploySchema.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(source, err)) from None
    unknown = unknown_fields(ServeDeploySchema, data)
    if unknown:
        raise SpecError(
            "\n".join(f"{source}: {u}: unknown field (check the spelling)" for u in unknown)
        )
    for i, app in enumerate(config.applications):
        if app.import_path != BUILDER:
            continue
        where = f"{source}: applications.{i}"
        made = parse_spec(AppArgs, app.args or {}, f"{where}.args").deployments()
        for j, deployment in enumerate(app.deployments):
            if deployment.name not in made:
                raise SpecError(
                    f"{where}.deployments.{j}.name: {deployment.name} is not a deployment of "
                    f"this app with these args (it makes {', '.join(sorted(made))})"
                )
    return config


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
    _pin(config.applications, follow=False)
    client = serve_api.serve_start(http_options=http)
    running = set(serve.status().applications)
    client.deploy_apps(config, _blocking=False)
    names = [app.name for app in config.applications]
    _wait_running(names, remove_failed=[n for n in names if n not in running])
    return [
        f"http://127.0.0.1:{http['port']}{app.route_prefix or '/'}" for app in config.applications
    ]


def follow_aliases(config: ServeDeploySchema) -> list[str]:
    """Move each app whose aliases now name other versions (`weft promote` moved one) to
    those versions, once it can serve them (the new CLIP's index is built); the apps moved.
    Serve rolls their replicas, new beside old, so requests keep being answered, by the old
    version until the new one is ready."""
    moved = _pin(config.applications, follow=True)
    if moved:
        serve_api.serve_start().deploy_apps(config, _blocking=False)
        _wait_running(moved, after_change=True)
    return moved


def _pin(apps: list[Any], follow: bool) -> list[str]:
    """Pin each Weft app's models (its `pinned` args) to the versions its references name
    now: a new app always, one already pinned only to `follow` its aliases, and then only
    once it can serve the new versions (else a warning says why); the apps pinned anew."""
    changed = []
    for app in apps:
        if app.import_path != BUILDER:
            continue
        args = parse_spec(AppArgs, app.args or {}, f"app {app.name}: args")
        versions = args.model_copy(update={"pinned": {}}).resolved()
        now = {role: v.version for role, v in versions.items()}
        if now == args.pinned or (args.pinned and not follow):
            continue
        if args.pinned and (why := unready(args, versions)):
            log.warning("app %s stays on %s: %s", app.name, args.pinned, why)
            continue
        app.args = (app.args or {}) | {"pinned": now}
        changed.append(app.name)
    return changed


def _wait_running(
    names: list[str], after_change: bool = False, remove_failed: Sequence[str] = ()
) -> None:
    """Until every app runs; a failed one raises its error (those in `remove_failed`, new
    apps, are removed, so that a corrected config deploys afresh; a running app that failed
    to move keeps its previous replicas serving)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    if after_change:  # until the controller takes up the new deploy (at most a few seconds)
        settle = time.monotonic() + 5
        while time.monotonic() < settle and _statuses(names) == {ApplicationStatus.RUNNING}:
            time.sleep(0.2)
    while True:
        apps = serve.status().applications
        states: dict[str, Any] = {n: apps.get(n) for n in names}
        failed = {
            n: s for n, s in states.items() if s and s.status == ApplicationStatus.DEPLOY_FAILED
        }
        if failed:
            name, state = next(iter(failed.items()))
            reason = _reason(state)
            for failed_name in set(failed) & set(remove_failed):
                serve.delete(failed_name)
            raise SpecError(f"app {name}: failed to deploy: {reason}")
        if all(s and s.status == ApplicationStatus.RUNNING for s in states.values()):
            return
        if time.monotonic() > deadline:
            waiting = "; ".join(f"{n}: {_reason(s)}" for n, s in states.items() if s)
            raise SpecError(
                f"apps {', '.join(names)} not running after {READY_TIMEOUT_S} s ({waiting}); "
                "are there CPUs for every replica?"
            )
        time.sleep(0.5)


def _statuses(names: list[str]) -> set[Any]:
    apps = serve.status().applications
    return {apps[n].status if n in apps else None for n in names}


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for an app that must not collide with another)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
