"""infra/image/Dockerfile: its CPU and CUDA variants pin what pyproject.toml and the Makefile
pin, and run as a user that is not root."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "infra" / "image" / "Dockerfile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def arg(name: str) -> str:
    found = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert found, f"ARG {name}"
    return found[1]


def test_ray_and_torch_are_the_projects_pins() -> None:
    ray = next(d for d in PROJECT["dependencies"] if d.startswith("ray["))
    assert ray.endswith("==2.60.*") and arg("RAY_VERSION").startswith("2.60.")
    torch = re.search(r"torch==(\S+)", (ROOT / "Makefile").read_text())
    assert torch and arg("TORCH_VERSION") == torch[1]
    assert "torch>=2.13,<2.15" in PROJECT["dependencies"]  # admits the image's torch


def test_both_variants_are_built_with_the_packages_version_as_tag() -> None:
    version = PROJECT["version"]
    assert f"-t weft:{version} ." in DOCKERFILE
    assert f"--build-arg VARIANT=cuda -t weft:{version}-cuda ." in DOCKERFILE
    assert arg("VARIANT") == "cpu"


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "useradd --uid 1000" in DOCKERFILE  # the runAsUser of infra/kuberay
