"""`weft tune`: run a sweep from its spec, print the trials and the best one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weft.cli.common import console, err_console, user_errors

if TYPE_CHECKING:
    from weft.tune.sweep import SweepResult


def tune(
    spec: Annotated[
        Path, typer.Argument(help="Sweep spec (YAML): jobs/sweep-clip.yaml, jobs/sweep-cfg.yaml.")
    ],
) -> None:
    """Sweep on Ray Tune, tracked in MLflow: a training spec's values (ASHA stops trailing
    trials; a local Ray runs its dashboard, which Ray Train needs to free a stopped trial's
    CPUs), or a trained diffusion model's guidance (CFG scale, negative prompt, steps),
    judged by a trained CLIP; the chosen setting is saved with the model."""

    print_sweep(run_sweep(spec))


def run_sweep(spec_path: Path) -> SweepResult:
    from weft.tune.spec import GuidanceSpec, load_sweep

    with user_errors():
        job = load_sweep(spec_path)
        from weft.tune.guidance import guidance_sweep
        from weft.tune.sweep import sweep

        console.print(f"sweeping [bold]{job.name}[/] from {spec_path}", highlight=False)
        return guidance_sweep(job) if isinstance(job, GuidanceSpec) else sweep(job)


def print_sweep(result: SweepResult) -> None:
    from weft.tracking import ui_command
    from weft.tune.sweep import table

    spec = result.spec
    frame = table(result.trials).drop(columns="run_id")  # in MLflow, and below for the best
    shown = Table(title=f"sweep {spec.name}: {spec.metric} ({spec.mode})")
    for column in frame.columns:  # a swept path by its last part: the title names the sweep
        shown.add_column(str(column).rsplit(".", 1)[-1], no_wrap=column == "trial")
    for row in frame.to_dict("records"):
        shown.add_row(*(_cell(v, quoted=k in spec.space) for k, v in row.items()))
    console.print(shown)
    best = result.best
    if best is None:
        err_console.print("[bold red]no trial completed[/]")
        raise typer.Exit(1)
    values = ", ".join(f"{k}={_cell(v, quoted=True)}" for k, v in best.values.items())
    console.print(
        f"best trial {best.id}: {spec.metric} {best.metrics[spec.metric]:.4g} with {values}\n"
        f"run {best.run_id}, model {result.model}",
        highlight=False,
    )
    if result.run_id:
        console.print(
            f"MLflow sweep run: {result.run_id}; to browse: {ui_command()}\n"
            f"to register its model: weft promote <spec> --sweep {result.run_id}",
            highlight=False,
        )


def _cell(value: object, quoted: bool = False) -> str:
    """A table cell: floats to 4 significant digits, swept strings quoted (so '' shows)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if quoted and isinstance(value, str) else str(value)
