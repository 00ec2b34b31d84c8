"""What every command group shares: the consoles (summaries to stdout, errors to stderr), bad
input as one clear line and exit 2 (`user_errors`), and the `--dashboard` option."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from weft.specs import SpecError
from weft.storage import StorageError

console = Console()
err_console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input ends in one clear line and a non-zero exit, never a traceback."""
    from weft.curate.report import AccountingError

    try:
        yield
    except (SpecError, StorageError, AccountingError) as err:
        for line in str(err).splitlines():
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


Dashboard = Annotated[
    bool,
    typer.Option(
        "--dashboard",
        help="Start the dashboard of the local Ray this command starts, to watch the run "
        "(its address is logged; also WEFT_DASHBOARD=1; a cluster at RAY_ADDRESS has its "
        "own). Off by default: it adds about a second to a short run's start.",
    ),
]


def ask_for_dashboard(dashboard: bool) -> None:
    """`--dashboard`: the local Ray that the command starts runs its dashboard."""
    if dashboard:
        from weft.cluster import DASHBOARD

        os.environ[DASHBOARD] = "1"
