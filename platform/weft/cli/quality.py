"""`weft quality`: every figure of the quality tables from nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from weft.cli.common import console, err_console, user_errors
from weft.cli.curate import run_curation
from weft.cli.data import data_emoji, data_inspection, data_openclipart, data_symbola
from weft.cli.eval import eval_inspection, eval_models, eval_retrieval
from weft.cli.index import run_index
from weft.cli.registry import run_promotion
from weft.cli.train import run_training


def quality(
    raw: Annotated[
        str, typer.Option(help="Where the corpora are written, each in a folder of its name.")
    ] = ".weft/drawings/raw",
    spec: Annotated[Path, typer.Option(help="Their curation spec.")] = Path(
        "pipelines/drawings.yaml"
    ),
    evaluation: Annotated[Path, typer.Option(help="The quality spec.")] = Path("jobs/quality.yaml"),
    gold: Annotated[Path, typer.Option(help="The gold queries.")] = Path(
        "jobs/gold/drawings-search.yaml"
    ),
    readme: Annotated[
        Path, typer.Option(help="A document whose quality block gets the new tables.")
    ] = Path("docs/quality.md"),
) -> None:
    """Every figure of the quality table from nothing: write the emoji, openclipart and
    Symbola corpora and curate them as one; train the drawings models and promote each
    behind its gate; index the corpus with the champion CLIP; then `weft eval models` and
    `weft eval retrieval` (reranked by the champion captioner). Each step's time is
    printed as it ends, and all of them at the end."""
    from weft.quality import flow

    _ran(lambda: flow.run(_Steps(), raw, spec, evaluation, gold, readme), readme)


class _Steps:
    """The steps of `weft quality` (weft.quality.flow.Steps) as the commands run them, each
    printing its summary, and each step's time as it ends."""

    def corpus(self, source: str, out: str) -> None:
        writers: dict[str, Callable[[str], None]] = {
            "emoji": data_emoji,
            "openclipart": data_openclipart,
            "symbola": data_symbola,
        }
        writers[source](out)

    def curate(self, spec: Path) -> str:
        return run_curation(spec)

    def train(self, spec: Path) -> str | None:
        return run_training(spec)

    def promote(self, spec: Path, *, run: str) -> bool:
        return run_promotion(spec, run=run)

    def index(self, data: str, model: str) -> None:
        run_index(data, model, ".weft/index", actors=2)

    def evaluate(self, spec: Path) -> str:
        return eval_models(spec)

    def retrieval(self, gold: Path, model: str, captioner: str, hybrid: float) -> str:
        return eval_retrieval(gold, model, hybrid=hybrid, captioner=captioner)

    def done(self, step: str, seconds: float) -> None:
        console.print(f"[bold]{step}[/]: {seconds:.0f} s", highlight=False)


def inspection(
    out: Annotated[
        str, typer.Option(help="Where the inspection sets are written.")
    ] = ".weft/inspection/sets",
    spec: Annotated[Path, typer.Option(help="Their curation spec.")] = Path(
        "pipelines/inspection.yaml"
    ),
    readme: Annotated[
        Path, typer.Option(help="A document whose quality block gets the new tables.")
    ] = Path("docs/inspection.md"),
) -> None:
    """The inspection figures from nothing: write the inspection sets (defects made on
    purpose on openclipart's object drawings), curate their training rows, train the
    inspector (its abstention thresholds calibrated on the val gold set) and promote it;
    then `weft eval inspection` on the test gold set. Each step's time is printed."""
    from weft.quality import flow

    _ran(lambda: flow.inspection(_InspectionSteps(), out, spec, readme), readme)


def _ran(run: Callable[[], dict[str, float]], readme: Path) -> None:
    """Run a flow; a model it did not promote ends it with exit 1; each step's time."""
    from weft.quality.flow import NotPromoted

    with user_errors():
        try:
            times = run()
        except NotPromoted as err:
            err_console.print(f"[bold red]error:[/] {err}")
            raise typer.Exit(1) from None
    console.print(f"{readme}: its quality block holds the tables above", highlight=False)
    total = sum(times.values())
    console.print(
        "time: "
        + ", ".join(f"{name} {s:.0f} s" for name, s in times.items())
        + f"; in all {total / 60:.1f} min",
        highlight=False,
    )


class _InspectionSteps(_Steps):
    """The steps of `weft inspection` (weft.quality.flow.InspectionSteps)."""

    def sets(self, out: str) -> None:
        data_inspection(out)

    def inspect(self, gold: Path, model: str) -> str:
        return eval_inspection(gold, model=model)
