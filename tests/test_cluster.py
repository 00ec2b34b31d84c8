"""The local Ray that `weft` starts listens on loopback only; joining a cluster is unchanged."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import ray
from ray._private import ray_constants

from weft import cluster
from weft.specs import SpecError

# Run in its own process, beside the session's Ray: connect, start a worker, then report
# every socket that Ray's processes listen on (TCP listening, UDP unconnected), by component,
# and ask the dashboard for its Data page, served by a module that connects back to the GCS.
PROBE = """
import json, os, socket, time, urllib.request
from pathlib import Path

import psutil
import ray
from ray._private.authentication.http_token_authentication import (
    get_auth_headers_if_auth_enabled,
)

from weft import cluster

REQUIRED = {"driver", "gcs_server", "raylet", "worker", "ray::DashboardAgent",
            "ray::RuntimeEnvAgent", "dashboard.py"}


def component(p):
    if p.pid == os.getpid():
        return "driver"
    cmd = p.cmdline()
    first = Path(cmd[0]).name if cmd else p.name()
    if first in ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
        return first
    if first.startswith("ray::"):
        return "worker"
    return next((Path(c).name for c in cmd[1:] if c.endswith(".py")), first)


def listening():
    me = psutil.Process()
    found = []
    for p in [me, *me.children(recursive=True)]:
        try:
            for c in p.net_connections(kind="inet"):
                udp = c.type == socket.SOCK_DGRAM and not c.raddr
                if c.status == psutil.CONN_LISTEN or udp:
                    found.append([component(p), c.laddr.ip, c.laddr.port])
        except psutil.Error:
            pass
    return found


os.environ[cluster.DASHBOARD] = '1'
cluster.connect(num_cpus=1)
ray.get(ray.remote(lambda: 0).remote())  # starts a worker
deadline = time.monotonic() + 60
found = listening()
while not REQUIRED <= {name for name, _, _ in found} and time.monotonic() < deadline:
    time.sleep(1)
    found = listening()
job = ray.get_runtime_context().get_job_id()
page = f"http://{ray._private.worker.get_dashboard_url()}/api/data/datasets/{job}"
request = urllib.request.Request(page, headers=get_auth_headers_if_auth_enabled({}))
status = urllib.request.urlopen(request, timeout=120).status
print(json.dumps({"listening": found, "data_page": status}))
ray.shutdown()
"""


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


@pytest.mark.integration
def test_the_local_ray_listens_on_loopback_only_and_its_dashboard_works() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    probed = json.loads(done.stdout.strip().splitlines()[-1])
    assert probed["data_page"] == 200
    found = probed["listening"]
    components = {name for name, _, _ in found}
    # on ports of their own; the autoscaler's and the agent's fixed metrics/HTTP ports may be
    # held by another Ray on this host (then they serve nothing), so they are not required
    assert {"driver", "gcs_server", "raylet", "worker", "ray::DashboardAgent"} <= components
    assert {"ray::RuntimeEnvAgent", "dashboard.py"} <= components
    assert [f for f in found if not loopback(f[1])] == []


def test_single_node_mode_is_on_only_while_the_local_ray_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[object, str | None, bool]] = []

    def init(**kwargs: object) -> None:
        mode = os.environ.get(cluster.SINGLE_NODE), ray_constants.ENABLE_RAY_CLUSTER
        seen.append((kwargs.get("address"), *mode))

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv(cluster.SINGLE_NODE, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cluster.connect()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    cluster.connect()
    assert seen == [(None, "0", False), ("10.0.0.1:6379", None, True)]
    assert cluster.SINGLE_NODE not in os.environ and ray_constants.ENABLE_RAY_CLUSTER


def test_work_that_leaves_ray_data_less_than_its_share_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray, "available_resources", lambda: {"CPU": 1.0})
    cluster.check_room("workers.cpus", "2 workers of 0.875 CPU", 1.75, "lower them")  # 0.25 left
    refused = (
        "workers.cpus: 2 workers of 1 CPU need 2 CPUs and Ray Data's tasks 0.25, more than the "
        "2 the local Ray has; lower them"
    )
    with pytest.raises(SpecError, match=f"^{re.escape(refused)}$"):
        cluster.check_room("workers.cpus", "2 workers of 1 CPU", 2, "lower them")
    with pytest.raises(SpecError, match="more than the 1 the local Ray has free; lower actors"):
        cluster.check_room("actors", "2 actors of 0.5 CPU", 1, "lower actors", free=True)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # a cluster may autoscale: not checked
    cluster.check_room("actors", "8 actors of 1 CPU", 8, "lower actors")


# A driver that ignores SIGINT, as a background job of a non-interactive shell does: its
# workers must still have a callable SIGINT handler, which Ray calls when it cancels a task.
SIGINT_PROBE = """
import signal
import ray
from weft import cluster

assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
cluster.connect(num_cpus=1)
handler = ray.get(ray.remote(lambda: repr(signal.getsignal(signal.SIGINT))).remote())
print(handler)
cluster.stop()
"""


@pytest.mark.integration
def test_workers_of_a_driver_that_ignores_sigint_can_be_interrupted() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGINT_PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "default_int_handler" in done.stdout.strip().splitlines()[-1]
