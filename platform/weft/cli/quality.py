"""`weft quality`: every figure of the quality tables from nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from weft.cli.common import console, err_console, user_errors
from weft.cli.curate import run_curation
from weft.cli.data import data_emoji
from weft.cli.eval import eval_models, eval_retrieval
from weft.cli.index import run_index
from weft.cli.registry import run_promotion
from weft.cli.train import run_training
from weft.specs import SpecError

# `weft quality`: the emoji models, each trained then promoted by its run.
QUALITY_JOBS = {
    Path(f"jobs/emoji-{kind}.yaml"): Path(f"jobs/promote-emoji-{kind}.yaml")
    for kind in ("clip", "captioner", "diffusion")
}


def quality(
    raw: Annotated[
        str, typer.Option(help="Where the emoji corpus is written.")
    ] = ".weft/emoji/raw",
    spec: Annotated[Path, typer.Option(help="Its curation spec.")] = Path("pipelines/emoji.yaml"),
    evaluation: Annotated[Path, typer.Option(help="The quality spec.")] = Path("jobs/quality.yaml"),
    gold: Annotated[Path, typer.Option(help="The gold queries.")] = Path(
        "jobs/gold/emoji-search.yaml"
    ),
    readme: Annotated[
        Path, typer.Option(help="A document whose quality block gets the new tables.")
    ] = Path("docs/quality.md"),
) -> None:
    """Every figure of the quality table from nothing: write the emoji corpus and curate it;
    train the emoji models and promote each behind its gate; index the corpus with the
    champion CLIP; then `weft eval models` and `weft eval retrieval`. Each step's time is
    printed as it ends, and all of them at the end."""
    steps: dict[str, float] = {}
    with _timed("corpus", steps):
        data_emoji(raw)
    with _timed("curation", steps):
        curated = run_curation(spec)
    for job, promotion in QUALITY_JOBS.items():
        with _timed(job.stem, steps):
            run = run_training(job)
            if not (run and run_promotion(promotion, run=run)):
                err_console.print(f"[bold red]error:[/] {job}: its model was not promoted")
                raise typer.Exit(1)
    with _timed("index", steps):
        run_index(curated, "emoji-clip@champion", ".weft/index", actors=2)
    with _timed("eval models", steps):
        tables = [eval_models(evaluation)]
    with _timed("eval retrieval", steps):
        tables.append(eval_retrieval(gold))
    from weft.quality.table import replace_block

    with user_errors():
        try:
            readme.write_text(replace_block(readme.read_text(), "\n".join(tables)))
        except (OSError, ValueError) as err:
            raise SpecError(f"--readme {readme}: {err}") from None
    console.print(f"{readme}: its quality tables are the ones above", highlight=False)
    total = sum(steps.values())
    console.print(
        "time: "
        + ", ".join(f"{name} {s:.0f} s" for name, s in steps.items())
        + f"; in all {total / 60:.1f} min",
        highlight=False,
    )


@contextmanager
def _timed(step: str, steps: dict[str, float]) -> Iterator[None]:
    """Record the block's wall time under `step`, and print it when the block ends."""
    started = time.monotonic()
    yield
    steps[step] = time.monotonic() - started
    console.print(f"[bold]{step}[/]: {steps[step]:.0f} s", highlight=False)
