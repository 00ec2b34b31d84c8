"""`weft demo`'s flow with recorded steps: their order, the demo's jobs, and which step waits
on which. No stage runs and no Ray starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weft.demo import flow


class Recorded:
    """Steps that record each call; `runs` are the MLflow runs the trainings and sweeps return."""

    def __init__(self, runs: dict[Path, str | None]) -> None:
        self.runs = runs
        self.calls: list[tuple[object, ...]] = []

    def corpus(self, raw: str, pairs: int) -> None:
        self.calls.append(("corpus", raw, pairs))

    def curate(self, spec: Path) -> str:
        self.calls.append(("curate", spec))
        return "out/data"

    def train(self, spec: Path) -> str | None:
        self.calls.append(("train", spec))
        return self.runs.get(spec, f"run-{spec.stem}")

    def sweep(self, spec: Path) -> str | None:
        self.calls.append(("sweep", spec))
        return self.runs.get(spec, f"run-{spec.stem}")

    def promote(self, spec: Path, *, run: str | None = None, sweep: str | None = None) -> bool:
        self.calls.append(("promote", spec, run, sweep))
        return False  # a refused promotion: the demo goes on

    def models(self) -> None:
        self.calls.append(("models",))

    def index(self, data: str, model: str) -> None:
        self.calls.append(("index", data, model))

    def tour(self, config: Path, home: Path) -> None:
        self.calls.append(("tour", config, home))


@pytest.fixture(autouse=True)
def _dashboard_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow asks for Ray's dashboard in the environment; put it back after each test."""
    monkeypatch.setenv("WEFT_DASHBOARD", "0")


def test_the_demo_runs_every_stage_in_order() -> None:
    steps = Recorded({})
    flow.run(steps, Path("pipelines/demo.yaml"), ".weft/demo/raw", 2000)

    assert steps.calls == [
        ("corpus", ".weft/demo/raw", 2000),
        ("curate", Path("pipelines/demo.yaml")),
        ("train", Path("jobs/clip.yaml")),
        ("train", Path("jobs/diffusion.yaml")),
        ("train", Path("jobs/captioner.yaml")),
        ("sweep", Path("jobs/sweep-clip.yaml")),
        ("promote", Path("jobs/promote-clip.yaml"), None, "run-sweep-clip"),
        ("sweep", Path("jobs/sweep-cfg.yaml")),
        ("promote", Path("jobs/promote-diffusion.yaml"), None, "run-sweep-cfg"),
        ("promote", Path("jobs/promote-captioner.yaml"), "run-captioner", None),
        ("models",),
        ("index", "out/data", "weft-clip@champion"),
        ("tour", Path("serve/weft.yaml"), Path(".weft/demo")),
    ]
    assert os.environ["WEFT_DASHBOARD"] == "1"  # the sweeps' Ray Train frees CPUs through it


def test_an_untracked_sweep_or_training_promotes_nothing_and_the_demo_goes_on() -> None:
    steps = Recorded({Path("jobs/sweep-cfg.yaml"): None, Path("jobs/captioner.yaml"): None})
    flow.run(steps, Path("p.yaml"), "raw", 10)

    promoted = [call[1] for call in steps.calls if call[0] == "promote"]
    assert promoted == [Path("jobs/promote-clip.yaml")]
    assert steps.calls[-1] == ("tour", Path("serve/weft.yaml"), Path("."))


def test_training_specs_given_replace_the_demos() -> None:
    steps = Recorded({})
    flow.run(steps, Path("p.yaml"), "raw", 10, train=[Path("jobs/mine.yaml")])

    assert [call[1] for call in steps.calls if call[0] == "train"] == [Path("jobs/mine.yaml")]
    # the captioner was not trained, so it is not promoted
    assert [call[1] for call in steps.calls if call[0] == "promote"] == [
        Path("jobs/promote-clip.yaml"),
        Path("jobs/promote-diffusion.yaml"),
    ]
