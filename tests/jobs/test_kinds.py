"""Which command runs a spec: every spec file the project ships is recognised by its fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.jobs.kinds import command, kind_of, parse_kind
from weft.specs import SpecError, read_yaml

ROOT = Path(__file__).resolve().parents[2]


def spec(path: str) -> dict[str, object]:
    data = read_yaml(ROOT / path)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "pipelines").glob("*.yaml")))
def test_every_curation_spec_runs_weft_curate(path: str) -> None:
    assert kind_of(spec(f"pipelines/{path}"), path) == "curate"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("jobs/clip.yaml", "train"),
        ("jobs/drawings-diffusion.yaml", "train"),
        ("jobs/judge-clip.yaml", "train"),
        ("jobs/sweep-clip.yaml", "tune"),
        ("jobs/sweep-cfg.yaml", "tune"),
        ("jobs/quality.yaml", "quality"),
    ],
)
def test_training_sweep_and_quality_specs_are_told_apart(path: str, kind: str) -> None:
    assert kind_of(spec(path), path) == kind


def test_an_index_spec_runs_weft_index_with_it() -> None:
    assert kind_of({"data": "s3://b/curated", "model": "weft-clip@champion"}, "x") == "index"
    assert command("index", "index.yaml") == ["index", "--spec", "index.yaml"]
    assert command("quality", "jobs/quality.yaml") == ["eval", "models", "jobs/quality.yaml"]


def test_a_spec_of_no_kind_says_how_to_name_one() -> None:
    with pytest.raises(SpecError, match=r"jobs/promote-clip.yaml: not a curation.*--kind"):
        kind_of(spec("jobs/promote-clip.yaml"), "jobs/promote-clip.yaml")
    with pytest.raises(SpecError, match="kind: 'serve' is not one of curate, train"):
        parse_kind("serve")
