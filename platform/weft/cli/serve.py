"""`weft serve` (a Serve config's apps on a local Ray until Ctrl-C or SIGTERM) and `weft keys
add|list|revoke` (the API keys of the HTTP API)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from weft.cli.common import console, err_console, user_errors
from weft.specs import SpecError


def serve_command(
    config: Annotated[
        Path, typer.Argument(help="A Ray Serve config (Ray's format), e.g. serve/weft.yaml.")
    ] = Path("serve/weft.yaml"),
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's).")] = None,
    follow: Annotated[
        float, typer.Option(help="Seconds between alias checks (0: stay on the first versions).")
    ] = 10.0,
) -> None:
    """Run a Serve config's apps on a local Ray, the HTTP proxy on 127.0.0.1, until Ctrl-C or
    SIGTERM (what Kubernetes sends), which stop the apps and exit 0. When `weft promote`
    moves an alias, the app rolls to the new version without downtime."""
    from weft import cluster
    from weft.serve import local

    with user_errors():
        deployed = local.load_config(config)
        cluster.connect()
    # after Ray's start, whose C++ core installs a SIGTERM handler that aborts (SIGABRT)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with user_errors():
            urls = local.start(deployed, port)
        for url in urls:
            console.print(
                f"serving {url} (the search page; OpenAPI: {url.rstrip('/')}/docs); Ctrl-C stops it"
            )
        while True:
            time.sleep(follow or 3600)
            if not follow:
                continue
            try:
                for name in local.follow_aliases(deployed):
                    console.print(f"app {name} moved to the versions its aliases name now")
            except SpecError as err:  # the old versions keep serving
                err_console.print(f"[bold red]error:[/] {err}", highlight=False)
    except KeyboardInterrupt:
        console.print("stopping: the apps finish the requests they hold")
        local.stop()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handled as Ctrl-C: raised in the main thread, where the command waits."""
    raise KeyboardInterrupt


keys_app = typer.Typer(help="API keys of the HTTP API (stored hashed).", no_args_is_help=True)


KeysFile = Annotated[
    str, typer.Option("--file", help="The keys file an app's args.keys names, local or s3://.")
]


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    role: Annotated[
        str | None,
        typer.Option(help="admin, researcher, operator or viewer: the role's scopes."),
    ] = None,
    scopes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated, instead of a role: search, generate, train, promote, keys, "
            "read, admin (default: search)."
        ),
    ] = None,
    per_minute: Annotated[int, typer.Option(help="Requests a minute (per replica).")] = 600,
    file: KeysFile = ".weft/keys.json",
) -> None:
    """Make an API key; its hash is stored, the key is printed this once."""
    from weft.serve import keys

    with user_errors():
        if role is not None and scopes is not None:
            raise SpecError("role: give a role or scopes, not both")
        if role is not None and role not in keys.ROLES:
            raise SpecError(f"role: {role}: use {', '.join(keys.ROLES)}")
        given = [s.strip() for s in (scopes or "search").split(",") if s.strip()]
        unknown = sorted(set(given) - set(keys.SCOPES))
        if unknown or not given:
            raise SpecError(
                f"scopes: {', '.join(unknown) or 'none given'}: use {', '.join(keys.SCOPES)}"
            )
        key = keys.add(
            file,
            name,
            cast(list[keys.Scope], given),
            per_minute,
            role=cast(keys.Role | None, role),
        )
    entry = next(e for e in keys.load(file) if e.name == name)
    what = f"role {role}: {', '.join(entry.scopes)}" if role else ", ".join(entry.scopes)
    err_console.print(f"key {name} ({what}) stored hashed in {file}; it is shown once:")
    print(key)


@keys_app.command("list")
def keys_list(file: KeysFile = ".weft/keys.json") -> None:
    """The keys in a keys file: names, scopes and rates (never the keys or their hashes)."""
    from weft.serve import keys

    with user_errors():
        entries = keys.load(file)
    table = Table(title=f"keys in {file}")
    for column in ("name", "role", "scopes", "per minute"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.name, e.role or "-", ", ".join(e.scopes), str(e.per_minute))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    file: KeysFile = ".weft/keys.json",
) -> None:
    """Remove a key; running apps refuse it within seconds, without a redeploy."""
    from weft.serve import keys

    with user_errors():
        keys.revoke(file, name)
    err_console.print(f"key {name} revoked in {file}; running apps refuse it within seconds")
