"""`weft train`: train (or resume) a model from its spec, print its metrics and where its
model, checkpoint and MLflow run are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weft.cli.common import Dashboard, ask_for_dashboard, console, user_errors
from weft.specs import load_spec
from weft.train.spec import TrainSpec


def train(
    spec: Annotated[Path, typer.Argument(help="Training spec (YAML), e.g. jobs/clip.yaml.")],
    dashboard: Dashboard = False,
) -> None:
    """Train (or resume) a model on curated data with Ray Train; tracked in MLflow."""
    ask_for_dashboard(dashboard)
    run_training(spec)


def run_training(spec_path: Path) -> str | None:
    """Train and print the result; the MLflow run's id."""
    with user_errors():
        job = load_spec(TrainSpec, spec_path)
        from weft.train.run import train as run_training

        console.print(
            f"training [bold]{job.name}[/] ({job.model.name}) from {spec_path}", highlight=False
        )
        result = run_training(job)
    _print_training(result)
    return result.run_id


def _print_training(result: object) -> None:
    from weft.tracking import ui_command
    from weft.train.run import TrainResult

    assert isinstance(result, TrainResult)
    table = Table(title="training")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"model: {result.model} (loads with weft.models.registry.load)", highlight=False)
    console.print(f"last checkpoint: {result.checkpoint}", highlight=False)
    if result.run_id:
        import mlflow

        artifacts = mlflow.get_run(result.run_id).info.artifact_uri
        console.print(
            f"MLflow run {result.run_id} (metrics, images, the model): {ui_command()}",
            highlight=False,
        )
        console.print(f"sample grids and attention maps: {artifacts}/eval", highlight=False)
