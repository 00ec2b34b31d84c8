"""The KubeRay manifests of `infra/kuberay`, validated offline as the Kubernetes API server
would (the v1.7.0 CRDs' schemas, kept in tests/infra/crds), with unknown fields refused,
and checked for the misconfigurations a cluster operator would refuse: unpinned images,
containers without resources, privileged pods, Ray's ports exposed outside the cluster."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from weft.jobs.kinds import COMMANDS, kind_of
from weft.serve.local import parse_config
from weft.specs import read_yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "infra" / "kuberay").glob("*.yaml"))
CRDS = Path(__file__).parent / "crds" / "v1.7.0"
# Ray's ports a client outside the cluster must not reach by default (docs/serving.md):
# the GCS, the dashboard (its job API runs code) and Ray Client.
PRIVATE_PORTS = {6379, 8265, 10001}
RAY_VERSION = "2.60.0"  # the image's (tests/infra/test_image.py)


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in MANIFESTS:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield f"{path.name}#{i}", doc


DOCUMENTS = list(documents())


@cache
def schema(kind: str, version: str) -> dict[str, Any]:
    """The CRD's schema of `kind` at `version`, with unknown fields refused."""
    crd = yaml.load((CRDS / f"ray.io_{kind.lower()}s.yaml").read_text(), Loader=yaml.CSafeLoader)
    found = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return strict(copy.deepcopy(found["schema"]["openAPIV3Schema"]))


def strict(node: Any) -> Any:
    """`node` with `additionalProperties: false` on every object schema that lists its
    properties and neither allows nor preserves others (the CRDs allow unknown fields; the
    API server prunes them silently, hiding a misspelled field)."""
    if isinstance(node, dict):
        for value in node.values():
            strict(value)
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container (init containers too) of every pod template in `doc`."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from containers(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from containers(value)


def test_there_are_manifests_to_check() -> None:
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert {"RayCluster", "RayJob", "RayService"} <= kinds


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_each_manifest_is_valid_against_its_crd_with_unknown_fields_refused(
    where: str, doc: dict[str, Any]
) -> None:
    group, _, version = doc["apiVersion"].partition("/")
    assert group == "ray.io", where
    errors = sorted(
        jsonschema.Draft7Validator(schema(doc["kind"], version)).iter_errors(doc), key=str
    )
    assert not errors, "\n".join(f"{where}: {e.json_path}: {e.message}" for e in errors)


def test_the_strict_schema_refuses_a_misspelled_field() -> None:
    where, doc = next((w, d) for w, d in DOCUMENTS if d["kind"] == "RayCluster")
    bad = copy.deepcopy(doc)
    bad["spec"]["headGroupSpec"]["rayStartParam"] = {}  # for rayStartParams
    errors = list(jsonschema.Draft7Validator(schema("RayCluster", "v1")).iter_errors(bad))
    assert any("rayStartParam" in e.message for e in errors), where


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_every_container_is_pinned_bounded_and_unprivileged(
    where: str, doc: dict[str, Any]
) -> None:
    found = list(containers(doc))
    assert found, where
    for c in found:
        name, image = c["name"], c["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{where} {name}: image {image} is not pinned"
        for side in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(side, {})), (
                f"{where} {name}: resources.{side} needs cpu and memory"
            )
        security = c.get("securityContext", {})
        assert not security.get("privileged"), f"{where} {name}: privileged"
        assert security.get("allowPrivilegeEscalation") is False, (
            f"{where} {name}: set securityContext.allowPrivilegeEscalation: false"
        )
        assert security.get("runAsNonRoot") is True, f"{where} {name}: runAsNonRoot"


def test_weft_images_carry_the_packages_version_and_gpu_pods_the_cuda_variant() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for where, doc in DOCUMENTS:
        for c in containers(doc):
            if not c["image"].rpartition("/")[2].startswith("weft:"):
                continue
            gpu = "nvidia.com/gpu" in c["resources"]["limits"]
            wanted = f"weft:{version}-cuda" if gpu else f"weft:{version}"
            assert c["image"].endswith(wanted), f"{where} {c['name']}: {c['image']}, not {wanted}"


def clusters() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Ray cluster spec: a RayCluster's, and those a RayJob or RayService starts."""
    for where, doc in DOCUMENTS:
        spec = doc["spec"]
        found = {"RayCluster": spec, "RayJob": spec.get("rayClusterSpec")}.get(doc["kind"])
        if doc["kind"] == "RayService":
            found = spec["rayClusterConfig"]
        if found is not None:
            yield where, found


CLUSTERS = list(clusters())


@pytest.mark.parametrize(("where", "cluster"), CLUSTERS, ids=[w for w, _ in CLUSTERS])
def test_every_cluster_autoscales_within_bounds(where: str, cluster: dict[str, Any]) -> None:
    assert cluster.get("enableInTreeAutoscaling") is True, where
    assert {"cpu", "memory"} <= set(cluster["autoscalerOptions"]["resources"]["limits"]), where
    assert cluster["rayVersion"] == RAY_VERSION, where
    for group in cluster["workerGroupSpecs"]:
        low, now, high = group["minReplicas"], group["replicas"], group["maxReplicas"]
        assert 0 <= low <= now <= high, f"{where} {group['groupName']}: {low} {now} {high}"


def test_gpu_groups_ask_for_gpus_on_gpu_nodes_only() -> None:
    groups = [
        (where, g)
        for where, c in CLUSTERS
        for g in c["workerGroupSpecs"]
        if g["groupName"] == "gpu"
    ]
    assert groups
    for where, group in groups:
        pod = group["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, where
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ], where
        for c in pod["containers"]:
            asked = c["resources"]
            assert asked["requests"]["nvidia.com/gpu"] == asked["limits"]["nvidia.com/gpu"], where


JOBS = [(w, d) for w, d in DOCUMENTS if d["kind"] == "RayJob"]


@pytest.mark.parametrize(("where", "job"), JOBS, ids=[w for w, _ in JOBS])
def test_every_rayjob_cleans_up_is_bounded_and_runs_a_shipped_spec(
    where: str, job: dict[str, Any]
) -> None:
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and "rayClusterSpec" in spec, where
    assert spec["backoffLimit"] >= 0 and spec["activeDeadlineSeconds"] > 0, where
    command, _, path = spec["entrypoint"].removeprefix("weft ").rpartition(" ")
    data = read_yaml(ROOT / path)  # in the image: pipelines/, jobs/, serve/
    assert isinstance(data, dict)
    assert command == " ".join(COMMANDS[kind_of(data, path)]), where


def test_the_rayservice_serves_serve_weft_yaml_with_the_clusters_settings() -> None:
    """One source of truth: serveConfigV2 is serve/weft.yaml but for CLUSTER_SETTINGS, and
    passes the checks `weft serve` makes (Ray's schema, unknown fields, the app's args)."""
    (doc,) = [d for _, d in DOCUMENTS if d["kind"] == "RayService"]
    served = yaml.safe_load(doc["spec"]["serveConfigV2"])
    expected = yaml.safe_load((ROOT / "serve" / "weft.yaml").read_text())
    for dotted, value in CLUSTER_SETTINGS.items():
        *parents, last = dotted.split(".")
        node = expected
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    assert served == expected, "rayservice.yaml's serveConfigV2 left serve/weft.yaml:\n" + (
        yaml.safe_dump(expected, sort_keys=False)
    )
    parse_config(served, "rayservice.yaml: serveConfigV2")


# What a cluster's serve config sets differently from serve/weft.yaml (a local Weft's).
CLUSTER_SETTINGS: dict[str, Any] = {
    "http_options.host": "0.0.0.0",
    "applications.0.args.index": "s3://weft-demo/index",
    "applications.0.args.readable": ["s3://weft-demo/curated"],
    "applications.0.args.keys": "s3://weft-demo/keys.json",
}


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_rays_own_ports_stay_inside_the_cluster(where: str, doc: dict[str, Any]) -> None:
    for c in containers(doc):
        for port in c.get("ports", []):
            assert "hostPort" not in port, f"{where} {c['name']}: hostPort {port}"
    head = doc.get("spec", {}).get("headGroupSpec") or doc.get("spec", {}).get(
        "rayClusterSpec", {}
    ).get("headGroupSpec", {})
    service = head.get("headService", {}).get("spec", {})
    assert service.get("type", "ClusterIP") == "ClusterIP", (
        f"{where}: the head service is {service.get('type')}: Ray's ports "
        f"{sorted(PRIVATE_PORTS)} would be reachable from outside the cluster"
    )
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", where
