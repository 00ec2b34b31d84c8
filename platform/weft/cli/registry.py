"""`weft promote` (register a run's model, move the alias behind the gate, print the gate's
table) and `weft models` (the registered versions and their lineage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weft.cli.common import console, err_console, user_errors
from weft.specs import load_spec


def promote(
    spec: Annotated[
        Path, typer.Argument(help="Promotion spec (YAML), e.g. jobs/promote-clip.yaml.")
    ],
    run: Annotated[
        str | None, typer.Option(help="The training run whose model to register.")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option(help="A sweep's MLflow run: register its best trial's model.")
    ] = None,
) -> None:
    """Register a run's model in MLflow's registry; move the alias only if it passes the gate."""
    if (run is None) == (sweep is None):
        err_console.print("[bold red]error:[/] give exactly one of --run and --sweep")
        raise typer.Exit(2)
    if not run_promotion(spec, run=run, sweep=sweep):
        raise typer.Exit(1)


def run_promotion(spec_path: Path, run: str | None = None, sweep: str | None = None) -> bool:
    """Promote and print the gate's table; whether the version passed."""
    from weft.registry.spec import PromoteSpec

    with user_errors():
        job = load_spec(PromoteSpec, spec_path)
        from weft.registry.promote import best_of_sweep
        from weft.registry.promote import promote as run_promotion

        decision = run_promotion(job, run or best_of_sweep(str(sweep)))
    _print_decision(decision)
    return decision.passed


def _print_decision(decision: object) -> None:
    from weft.registry.promote import Decision

    assert isinstance(decision, Decision)
    shown = Table(
        title=f"gate: {decision.model} version {decision.version} (run {decision.run_id})"
    )
    champion = (
        f"champion (v{decision.champion_version})" if decision.champion_version else "champion"
    )
    for column in ("metric", "value", "threshold", champion, "verdict"):
        shown.add_column(column)
    for c in decision.checks:
        cells = (c.value, c.threshold, c.champion)
        shown.add_row(
            c.metric,
            *("-" if v is None else f"{v:.4g}" for v in cells),
            "[green]ok[/]" if c.passed else f"[red]{c.reason}[/]",
        )
    console.print(shown)
    moved = (
        f"; alias [bold]{decision.alias}[/] → version {decision.version}" if decision.alias else ""
    )
    if decision.passed:
        console.print(f"[green]promoted[/]{moved}: models:/{decision.model}@{decision.alias}")
    else:
        err_console.print(
            f"[bold red]refused:[/] the gate failed{moved}; the champion is unchanged"
        )


def alias(
    model: Annotated[str, typer.Argument(help="The registered model, e.g. weft-clip.")],
    name: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    version: Annotated[str, typer.Argument(help="The version it is to name.")],
    unchecked: Annotated[
        bool, typer.Option("--unchecked", help="Also a version that failed its gate.")
    ] = False,
) -> None:
    """Point an alias at a version: to roll back to the one before, or forward again. Serving
    apps that follow the alias move with it; the audit log records the move."""
    from weft.registry.promote import move_alias

    with user_errors():
        previous = move_alias(model, name, version, unchecked=unchecked)
    console.print(
        f"models:/{model}@{name} → version {version} (was {previous or 'unset'})", highlight=False
    )


def models() -> None:
    """Registered models: versions, aliases, gate results and lineage."""
    from weft.registry.promote import registered

    shown = Table(title="registered models")
    for column in ("model", "version", "aliases", "gate", "dataset hash", "run", "generation"):
        shown.add_column(column)
    for v in registered():
        shown.add_row(
            v.model, v.version, ", ".join(v.aliases), v.gate, v.dataset, v.run_id, v.generation
        )
    console.print(shown)
