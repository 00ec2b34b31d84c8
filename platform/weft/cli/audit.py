"""`weft audit`: the audit log's events, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from weft.cli.common import console, user_errors


def audit_command(
    days: Annotated[float, typer.Option(help="Events of the last this many days.")] = 7.0,
    limit: Annotated[int, typer.Option(help="At most this many (the latest).")] = 200,
    action: Annotated[
        str | None, typer.Option(help="Only this action: submit, stop, promote, key.add, ...")
    ] = None,
) -> None:
    """Who did what, when, and the outcome: job submissions and stops, promotions and alias
    moves, key changes, refused requests (the log: WEFT_AUDIT, else .weft/audit)."""
    from weft import audit

    with user_errors():
        events = audit.read(since=datetime.now(UTC) - timedelta(days=days))
    if action:
        events = [e for e in events if e.action == action]
    table = Table(title=f"audit log {audit.location()}")
    for column in ("when (UTC)", "who", "action", "target", "outcome", "detail"):
        table.add_column(column)
    for e in events[-limit:]:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        table.add_row(f"{e.when:%Y-%m-%d %H:%M:%S}", e.who, e.action, e.target, e.outcome, detail)
    console.print(table)
