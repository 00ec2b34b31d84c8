"""`weft submit` to a real two-node Ray cluster (tests/raycluster.py), with a loopback S3 server
and an MLflow server: a curation job and a two-worker training job run on both nodes, leave a
complete output and MLflow run, and keep their credentials out of everything Ray shows; then
the second node is killed in the middle of a training job and of a curation job."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

from tests.mlflowserver import running_mlflow_server
from tests.raycluster import Cluster, running_cluster
from tests.s3server import S3Server
from weft.demo.corpus import SHAPES, generate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


class Project:
    """A folder of specs to submit from, and the environment `weft submit` runs in."""

    def __init__(self, root: Path, cluster: Cluster, s3: S3Server, tracking: str) -> None:
        self.root, self.cluster, self.s3 = root, cluster, s3
        self.bucket = s3.new_bucket()
        self.env = {
            **cluster.env,
            "AWS_ENDPOINT_URL_S3": s3.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "MLFLOW_TRACKING_URI": tracking,
            "WEFT_AUDIT": str(root / "audit"),
            "WEFT_USER": "dana",
        }

    def spec(self, name: str, body: dict[str, Any]) -> str:
        (self.root / name).write_text(yaml.safe_dump(body))
        return name

    def weft(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "weft.cli", *args, "--address", self.cluster.dashboard]
        return subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600
        )

    def submit(self, spec: str, *extra: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        done = self.weft("submit", spec, *extra)
        found = re.search(r"submitted (weft-[a-z0-9-]+)", done.stdout)
        assert found, done.stdout + done.stderr
        return found[1], done

    def published(self, prefix: str) -> dict[str, Any] | None:
        """The published version's report of a curation output on S3, if one is."""
        s3 = self.s3.client()
        try:
            run = json.loads(
                s3.get_object(Bucket=self.bucket, Key=f"{prefix}/_PUBLISHED")["Body"].read()
            )
        except s3.exceptions.NoSuchKey:
            return None
        key = f"{prefix}/versions/{run['run']}/report.json"
        return dict(json.loads(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))


@pytest.fixture(scope="module")
def project(
    cluster: Cluster, tracking: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    made = Project(tmp_path_factory.mktemp("project"), cluster, s3_server, tracking)
    generate(
        f"s3://{made.bucket}/raw",
        pairs=160,
        shards=4,
        documents=20,
        storage_spec=s3_server.storage(),
    )
    return made


def curation(project: Project, output: str) -> dict[str, Any]:
    return {
        "name": "two-nodes",
        "inputs": [
            {"uri": f"s3://{project.bucket}/raw/pairs", "format": "webdataset"},
            {"uri": f"s3://{project.bucket}/raw/docs", "format": "jsonl", "text_column": "text"},
        ],
        "output": f"s3://{project.bucket}/{output}",
        "langid": {"enabled": False},
        "nsfw": {"enabled": False},
    }


def training(project: Project, name: str, steps: int) -> dict[str, Any]:
    """Two workers of 0.75 CPU: one per node, each leaving a quarter for Ray Data's tasks."""
    return {
        "name": name,
        "model": "clip-tiny",
        "data": {"uri": f"s3://{project.bucket}/curated", "val_percent": 10},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": steps, "batch_size": 8},
        "workers": {"count": 2, "cpus": 0.75},
        "checkpoint": {"every_steps": 5, "max_failures": 3},
        "eval": {"every_steps": steps, "batches": 1, "classes": list(SHAPES)},
        "output": f"s3://{project.bucket}/runs",
        "mlflow": {"experiment": "two-nodes"},
    }


def ray_job(cluster: Cluster, submission_id: str) -> dict[str, Any]:
    return dict(cluster.api(f"/api/jobs/{submission_id}"))


def job_runs(tracking: str, submission_id: str) -> list[Any]:
    """The MLflow runs a job started (a client of its own: `mlflow.set_tracking_uri` would
    also set the environment of this process's later tests)."""
    client = mlflow.MlflowClient(tracking_uri=tracking)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, f"tags.`weft.job` = '{submission_id}'"))


def loss_steps(tracking: str, run_id: str) -> list[int]:
    """The steps at which the run logged its loss (the first, and every 10th)."""
    client = mlflow.MlflowClient(tracking_uri=tracking)
    return [m.step for m in client.get_metric_history(run_id, "loss")]


def test_a_curation_job_runs_on_both_nodes_streams_its_logs_and_publishes(
    project: Project, tracking: str
) -> None:
    spec = project.spec("curate.yaml", curation(project, "curated"))
    started = time.monotonic()
    job_id, done = project.submit(spec)
    print(f"curation job: {time.monotonic() - started:.1f} s", file=sys.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "accounting:" in done.stdout  # the job's own output, streamed
    assert "SUCCEEDED" in done.stdout and "runtime env: working dir" in done.stdout
    report = project.published("curated")
    assert report is not None and report["counts"]["kept"] > 0
    nodes = {
        t["node_id"] for t in project.cluster.tasks(ray_job(project.cluster, job_id)["job_id"])
    }
    assert len(nodes - {None}) == 2, nodes
    (run,) = job_runs(tracking, job_id)
    assert run.info.status == "FINISHED" and run.data.tags["weft.user"] == "dana"


def test_a_two_worker_training_job_puts_one_worker_on_each_node(
    project: Project, tracking: str
) -> None:
    if project.published("curated") is None:
        pytest.skip("needs the curation job's output")
    spec = project.spec("train.yaml", training(project, "two-nodes", steps=10))
    started = time.monotonic()
    job_id, done = project.submit(spec)
    print(f"training job: {time.monotonic() - started:.1f} s", file=sys.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    actors = project.cluster.actors(ray_job(project.cluster, job_id)["job_id"])
    workers = {a["node_id"] for a in actors if a["class_name"] == "RayTrainWorker"}
    assert len(workers) == 2, actors
    (run,) = job_runs(tracking, job_id)
    assert run.info.status == "FINISHED" and "val/loss" in run.data.metrics
    assert max(loss_steps(tracking, run.info.run_id)) == 10


def test_a_failing_job_ends_weft_submit_with_its_exit_code_and_reason(project: Project) -> None:
    spec = project.spec("bad.yaml", training(project, "bad", steps=5) | {"epochs": 3})
    _, done = project.submit(spec)
    assert done.returncode == 2, done.stdout[-2000:]  # the job's: `weft train`'s bad spec
    assert "FAILED" in done.stdout and "epochs: unknown field" in done.stdout


def test_a_stopped_job_is_stopped_and_its_stop_audited(project: Project) -> None:
    spec = project.spec("long.yaml", training(project, "long", steps=100_000))
    job_id, _ = project.submit(spec, "--no-wait")
    stopped = project.weft("jobs", "stop", job_id)
    assert stopped.returncode == 0 and "stopping" in stopped.stderr, stopped.stderr
    deadline = time.monotonic() + 60
    while ray_job(project.cluster, job_id)["status"] != "STOPPED":
        assert time.monotonic() < deadline, ray_job(project.cluster, job_id)
        time.sleep(0.5)
    status = project.weft("jobs", "status", job_id)
    assert status.returncode != 0 and "STOPPED" in status.stdout
    assert [e["who"] for e in _audit(project) if e["action"] == "stop"] == ["dana"]


def test_credentials_stay_out_of_the_entrypoint_metadata_logs_dashboard_and_audit(
    project: Project,
) -> None:
    submitted = [e for e in _audit(project) if e["action"] == "submit"]
    assert submitted and all(e["who"] == "dana" and e["outcome"] == "ok" for e in submitted)
    secret = project.s3.secret_key
    for event in submitted:
        job = ray_job(project.cluster, event["target"])
        assert secret not in job["entrypoint"] and secret not in json.dumps(job["metadata"])
        logs = project.cluster.api(f"/api/jobs/{event['target']}/logs")["logs"]
        assert logs and secret not in logs
        # what a browser is shown: the variables' names, their values redacted
        shown = _as_browser(project.cluster, f"/api/jobs/{event['target']}")
        env = shown["runtime_env"]["env_vars"]
        assert env["AWS_SECRET_ACCESS_KEY"] == "<redacted>" and secret not in json.dumps(shown)
    for path in (project.root / "audit").rglob("*.json"):
        assert secret not in path.read_text()


def _audit(project: Project) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((project.root / "audit").rglob("*.json"))]


def _as_browser(cluster: Cluster, path: str) -> dict[str, Any]:
    import urllib.request

    token = (cluster.root / "token").read_text().strip()
    request = urllib.request.Request(
        cluster.dashboard + path,
        headers={"Authorization": f"Bearer {token}", "User-Agent": "Mozilla/5.0 Chrome/131"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _kill_worker_node_when(
    cluster: Cluster, ready: Callable[[], bool], log: list[str], timeout_s: float = 300
) -> threading.Thread:
    """In the background: once `ready()`, SIGKILL the second node's processes, then start a
    new second node."""

    def run() -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                log.append("never ready")
                return
            time.sleep(0.5)
        worker = cluster.nodes[-1]
        worker.stop(signal.SIGKILL, grace_s=1)
        log.append(f"killed {worker.name}")
        time.sleep(3)
        cluster.add_node(f"worker-{len(cluster.nodes)}")
        log.append("new node joined")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _checkpointed(project: Project, run: str) -> bool:
    """Whether Ray Train has registered a checkpoint of the run (not just written its files)."""
    try:
        snapshot = project.s3.client().get_object(
            Bucket=project.bucket, Key=f"runs/{run}/checkpoint_manager_snapshot.json"
        )
        return json.loads(snapshot["Body"].read()).get("latest_checkpoint_result") is not None
    except (project.s3.client().exceptions.NoSuchKey, ValueError):
        return False


def test_a_node_killed_mid_training_the_job_resumes_from_its_checkpoint_on_a_new_node(
    project: Project, tracking: str
) -> None:
    """The spec survives 3 worker failures: Ray Train restarts the worker group from the last
    checkpoint once a second node is there again; one MLflow run, its steps continuous."""
    if project.published("curated") is None:
        pytest.skip("needs the curation job's output")
    spec = project.spec("train-fault.yaml", training(project, "node-lost", steps=30))
    job_id, _ = project.submit(spec, "--no-wait")
    events: list[str] = []
    killer = _kill_worker_node_when(
        project.cluster, lambda: _checkpointed(project, "node-lost"), events
    )
    followed = project.weft("jobs", "logs", job_id, "--follow")
    killer.join(timeout=120)
    print(f"training fault: {events}", file=sys.stderr)
    assert events and events[0].startswith("killed"), events
    assert followed.returncode == 0, followed.stdout[-3000:] + followed.stderr[-3000:]
    (run,) = job_runs(tracking, job_id)
    steps = loss_steps(tracking, run.info.run_id)
    assert set(steps) == {1, 10, 20, 30} and steps.count(1) == 1, steps  # resumed, not restarted


def test_a_node_killed_mid_curation_the_output_is_the_undisturbed_runs(project: Project) -> None:
    """Ray Data retries the lost node's tasks on the others: the output published is the one
    an undisturbed run published, by content hash."""
    undisturbed = project.published("curated")
    if undisturbed is None:
        pytest.skip("needs the undisturbed curation job's output")
    spec = project.spec("curate-fault.yaml", curation(project, "curated-fault"))
    job_id, _ = project.submit(spec, "--no-wait")
    worker = project.cluster.nodes[-1]

    def on_the_worker() -> bool:
        try:
            ray_id = ray_job(project.cluster, job_id).get("job_id")
            return bool(ray_id) and any(
                t["node_id"] == worker.node_id for t in project.cluster.tasks(ray_id)
            )
        except OSError:
            return False

    events: list[str] = []
    killer = _kill_worker_node_when(project.cluster, on_the_worker, events)
    followed = project.weft("jobs", "logs", job_id, "--follow")
    killer.join(timeout=120)
    print(f"curation fault: {events}", file=sys.stderr)
    assert events and events[0].startswith("killed"), events
    assert followed.returncode == 0, followed.stdout[-3000:] + followed.stderr[-3000:]
    report = project.published("curated-fault")
    assert report is not None
    assert report["counts"]["content_hash"] == undisturbed["counts"]["content_hash"]
    assert report["counts"]["kept"] == undisturbed["counts"]["kept"]


# Run where Ray's token is the cluster's (the test process's own Ray has another): the
# product API's job routes, behind the gate, on a keys file of a researcher and a viewer.
HTTP_CLIENT = """
import asyncio, json, sys
import httpx
from fastapi import FastAPI
from weft.serve import gate, keys, trainjobs

file = sys.argv[2] + "/keys.json"
tokens = {role: keys.add(file, role, role=role) for role in ("researcher", "viewer")}
app = FastAPI()
app.add_middleware(gate.Gate)
app.include_router(trainjobs.router)
app.state.jobs_address = sys.argv[1]
app.state.policy = gate.Policy(keys.Keyring(file), True, 1 << 20, 10, 120)
spec = json.loads(sys.argv[3])

async def main():
    found = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as c:
        def post(body, role):
            headers = {"Authorization": "Bearer " + tokens[role]}
            return c.post("/v1/train/jobs", json={"spec": body}, headers=headers)

        found["viewer"] = (await post(spec, "viewer")).status_code
        found["curation"] = (await post({"inputs": []}, "researcher")).json()
        made = await post(spec, "researcher")
        found["made"] = [made.status_code, made.json()]
        job = made.json()["id"]
        for _ in range(240):
            headers = {"Authorization": "Bearer " + tokens["viewer"]}
            got = (await c.get(f"/v1/train/jobs/{job}", headers=headers)).json()
            if got["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
            await asyncio.sleep(0.5)
        found["done"] = got
        found["unknown"] = (await c.get("/v1/train/jobs/nope", headers=headers)).status_code
    print(json.dumps(found))

asyncio.run(main())
"""


def test_the_http_api_submits_a_training_job_and_reports_it(project: Project) -> None:
    """A spec the job refuses (an unknown field) fails fast: the report says why."""
    spec = training(project, "over-http", steps=5) | {"epochs": 3}
    done = subprocess.run(
        [sys.executable, "-c", HTTP_CLIENT, project.cluster.dashboard, str(project.root),
         json.dumps(spec)],
        env=project.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["viewer"] == 403
    assert "not a training spec" in found["curation"]["detail"]
    status, made = found["made"]
    assert status == 202 and made["submitted_by"] == "key:researcher"
    report = found["done"]
    assert report["status"] == "FAILED" and report["exit_code"] == 2, report
    assert "epochs" in report["message"]
    assert found["unknown"] == 404
    submitted = [e for e in _audit(project) if e["target"] == made["id"]]
    assert [(e["action"], e["who"]) for e in submitted] == [("submit", "key:researcher")]
