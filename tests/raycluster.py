"""A real two-node Ray cluster on this machine: `ray start --head` and `ray start --address`,
one CPU each, each in its own temp folder, with Ray's token authentication on.

Each node is a `ray start --block` process in its own session; it is stopped by PID (never
`ray stop`, which stops every Ray on the machine): the node's processes, found as that
process's descendants while it runs, get SIGTERM, then SIGKILL.

Ray's multi-node mode gives a node the host's routable address and binds its GCS, raylet and
object manager there; the dashboard (the job API) is asked for 127.0.0.1, and every port is
chosen here, outside Ray's worker range, so two clusters on one machine never collide.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.s3server import free_port

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    node_id: str = ""  # Ray's id for it, once it has joined
    # Ray's processes of this node, collected while the node runs.
    pids: set[int] = field(default_factory=set)

    def collect(self) -> None:
        with suppress(psutil.NoSuchProcess):
            parent = psutil.Process(self.process.pid)
            self.pids |= {p.pid for p in parent.children(recursive=True)}

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace_s: float = 5.0) -> None:
        """Signal the node's processes and `ray start` itself; SIGKILL what is left."""
        self.collect()
        targets = [self.process.pid, *self.pids]
        for pid in targets:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in targets):
            time.sleep(0.2)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0)
        for pid in targets:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    root: Path  # the token, each node's log
    state: Path  # each node's temp folder: short, as Ray's socket paths must be (107 bytes)
    gcs: str  # host:port
    dashboard: str  # http://127.0.0.1:port
    env: dict[str, str]  # what a client needs: the token and PATH
    nodes: list[Node] = field(default_factory=list)

    def add_node(self, name: str) -> Node:
        """Start a node that joins the head; wait until the cluster counts it alive."""
        before = set(self.alive())
        node = _start(self, name, ["--address", self.gcs])
        _wait(lambda: bool(set(self.alive()) - before), f"node {name} to join", node.log)
        (node.node_id,) = set(self.alive()) - before
        node.collect()
        return node

    def api(self, path: str, **query: str) -> Any:
        """A GET on the dashboard's HTTP API, with the token."""
        url = f"{self.dashboard}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        token = (self.root / "token").read_text().strip()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def alive(self) -> list[str]:
        """The ids of the nodes the cluster counts alive."""
        try:
            found = self.api("/nodes", view="summary")
        except OSError:
            return []
        return [
            n["raylet"]["nodeId"]
            for n in found["data"]["summary"]
            if n["raylet"].get("state") == "ALIVE"
        ]

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        """The tasks of a Ray job (the job's Ray id, not its submission id)."""
        return self._of_job("tasks", job_id)

    def actors(self, job_id: str) -> list[dict[str, Any]]:
        return self._of_job("actors", job_id)

    def _of_job(self, kind: str, job_id: str) -> list[dict[str, Any]]:
        """The state API's list of `kind` (tasks, actors) of one Ray job."""
        found = self.api(
            f"/api/v0/{kind}",
            filter_keys="job_id",
            filter_predicates="=",
            filter_values=job_id,
            detail="1",
            limit="10000",
        )
        return list(found["data"]["result"]["result"])


def _start(cluster: Cluster, name: str, role: list[str]) -> Node:
    temp = cluster.state / name
    temp.mkdir(parents=True, exist_ok=True)
    ports = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-grpc-port",
        "--dashboard-agent-listen-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ]
    command = [RAY, "start", "--block", *role, "--num-cpus", "1", "--temp-dir", str(temp)]
    command += ["--disable-usage-stats"]
    for option in ports:
        command += [option, str(free_port())]
    log = cluster.root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=out, env=cluster.env, start_new_session=True
        )
    node = Node(name, process, log)
    cluster.nodes.append(node)
    return node


def _wait(ready: Any, what: str, log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}: see {log}")
        time.sleep(0.5)


@contextmanager
def running_cluster(root: Path) -> Iterator[Cluster]:
    """A head node and a second node, one CPU each; everything stopped by PID at the end."""
    import ray

    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(os.urandom(32).hex())
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(root / "token"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "WEFT_HOME", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    port, dashboard = free_port(), free_port()
    host = ray.util.get_node_ip_address()
    state = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    cluster = Cluster(root, state, f"{host}:{port}", f"http://127.0.0.1:{dashboard}", env)
    try:
        head_options = ["--head", "--port", str(port), "--dashboard-host", "127.0.0.1"]
        head_options += ["--dashboard-port", str(dashboard)]
        head_options += ["--ray-client-server-port", str(free_port())]
        head = _start(cluster, "head", head_options)
        _wait(lambda: len(cluster.alive()) == 1, "the head node", head.log)
        (head.node_id,) = cluster.alive()
        head.collect()
        cluster.add_node("worker")
        yield cluster
    finally:
        for node in reversed(cluster.nodes):
            node.stop()
        shutil.rmtree(state, ignore_errors=True)
