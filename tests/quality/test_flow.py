"""`weft quality`'s flow with recorded steps: their order and times, the tables written into
the document's quality block, and a model that is not promoted stopping it. No stage runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.quality import flow
from weft.quality.table import BEGIN, END
from weft.specs import SpecError


class Recorded:
    """Steps that record each call; the trainings of `untracked` have no MLflow run."""

    def __init__(self, untracked: tuple[Path, ...] = (), refused: tuple[Path, ...] = ()) -> None:
        self.untracked, self.refused = untracked, refused
        self.calls: list[tuple[object, ...]] = []
        self.times: list[str] = []

    def corpus(self, source: str, out: str) -> None:
        self.calls.append(("corpus", source, out))

    def curate(self, spec: Path) -> str:
        self.calls.append(("curate", spec))
        return "curated/data"

    def train(self, spec: Path) -> str | None:
        self.calls.append(("train", spec))
        return None if spec in self.untracked else f"run-{spec.stem}"

    def promote(self, spec: Path, *, run: str) -> bool:
        self.calls.append(("promote", spec, run))
        return spec not in self.refused

    def index(self, data: str, model: str) -> None:
        self.calls.append(("index", data, model))

    def evaluate(self, spec: Path) -> str:
        self.calls.append(("evaluate", spec))
        return "## models\n"

    def retrieval(self, gold: Path, model: str, captioner: str, hybrid: float) -> str:
        self.calls.append(("retrieval", gold, model, captioner, hybrid))
        return "## gold\n"

    def sets(self, out: str) -> None:
        self.calls.append(("sets", out))

    def inspect(self, gold: Path, model: str) -> str:
        self.calls.append(("inspect", gold, model))
        return "## inspection\n"

    def done(self, step: str, seconds: float) -> None:
        assert seconds >= 0
        self.times.append(step)


def _readme(tmp_path: Path) -> Path:
    readme = tmp_path / "quality.md"
    readme.write_text(f"# Quality\n{BEGIN}\nold table\n{END}\nafter\n")
    return readme


def test_every_step_runs_in_order_and_the_tables_land_in_the_block(tmp_path: Path) -> None:
    steps, readme = Recorded(), _readme(tmp_path)
    times = flow.run(steps, "raw", Path("c.yaml"), Path("q.yaml"), Path("g.yaml"), readme)

    assert steps.calls == [
        *(("corpus", source, f"raw/{source}") for source in ("emoji", "openclipart", "symbola")),
        ("curate", Path("c.yaml")),
        *(
            call
            for kind in ("clip", "captioner", "diffusion")
            for call in (
                ("train", Path(f"jobs/drawings-{kind}.yaml")),
                ("promote", Path(f"jobs/promote-drawings-{kind}.yaml"), f"run-drawings-{kind}"),
            )
        ),
        ("index", "curated/data", "drawings-clip@champion"),
        ("evaluate", Path("q.yaml")),
        ("retrieval", Path("g.yaml"), flow.CLIP, flow.CAPTIONER, flow.HYBRID),
    ]
    corpora = ["corpus emoji", "corpus openclipart", "corpus symbola"]
    trained = ["drawings-clip", "drawings-captioner", "drawings-diffusion"]
    order = [*corpora, "curation", *trained, "index"]
    assert list(times) == steps.times == [*order, "eval models", "eval retrieval"]
    assert readme.read_text() == f"# Quality\n{BEGIN}\n## models\n\n## gold\n{END}\nafter\n"


@pytest.mark.parametrize("how", ["untracked", "refused"])
def test_a_model_not_promoted_stops_the_flow_naming_its_spec(tmp_path: Path, how: str) -> None:
    job = (Path("jobs/drawings-captioner.yaml"), Path("jobs/promote-drawings-captioner.yaml"))
    steps = Recorded(untracked=job[:1]) if how == "untracked" else Recorded(refused=job[1:])
    readme = _readme(tmp_path)
    before = readme.read_text()

    with pytest.raises(flow.NotPromoted, match=r"^jobs/drawings-captioner.yaml: its model was"):
        flow.run(steps, "raw", Path("c.yaml"), Path("q.yaml"), Path("g.yaml"), readme)
    assert ("train", Path("jobs/drawings-diffusion.yaml")) not in steps.calls
    assert steps.times == [
        "corpus emoji",
        "corpus openclipart",
        "corpus symbola",
        "curation",
        "drawings-clip",
    ]
    assert readme.read_text() == before


def test_a_document_without_the_block_is_named(tmp_path: Path) -> None:
    readme = tmp_path / "plain.md"
    readme.write_text("no markers\n")
    with pytest.raises(SpecError, match=rf"--readme {readme}: no <!-- weft quality: begin"):
        flow.run(Recorded(), "raw", Path("c.yaml"), Path("q.yaml"), Path("g.yaml"), readme)


def test_the_inspection_flow_builds_trains_promotes_then_measures_on_the_test_set(
    tmp_path: Path,
) -> None:
    steps, readme = Recorded(), _readme(tmp_path)
    times = flow.inspection(steps, "sets", Path("i.yaml"), readme)
    assert steps.calls == [
        ("sets", "sets"),
        ("curate", Path("i.yaml")),
        ("train", Path("jobs/inspector.yaml")),
        ("promote", Path("jobs/promote-inspector.yaml"), "run-inspector"),
        ("inspect", Path("sets/gold/test"), "models:/inspector@champion"),
    ]
    assert list(times) == ["sets", "curation", "inspector", "eval inspection"]
    assert readme.read_text() == f"# Quality\n{BEGIN}\n## inspection\n{END}\nafter\n"
    refused = Recorded(refused=(Path("jobs/promote-inspector.yaml"),))
    with pytest.raises(flow.NotPromoted, match=r"^jobs/inspector.yaml: its model was not"):
        flow.inspection(refused, "sets", Path("i.yaml"), readme)
