"""`weft submit` (a spec as a Ray Job on a cluster, its logs streamed until it ends) and
`weft jobs list|status|logs|stop`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from weft.cli.common import console, err_console, user_errors

if TYPE_CHECKING:
    from weft.jobs.follow import JobView

Address = Annotated[
    str | None,
    typer.Option(
        help="The Ray dashboard's address (default: RAY_ADDRESS if it is http(s)://, else "
        "http://127.0.0.1:8265); Ray's token from RAY_AUTH_TOKEN or ~/.ray/auth_token."
    ),
]
JobId = Annotated[str, typer.Argument(help="The job's id, as `weft submit` printed it.")]


def submit_command(
    spec: Annotated[
        Path, typer.Argument(help="A curation, training, sweep, index or quality spec (YAML).")
    ],
    kind: Annotated[
        str | None,
        typer.Option(help="curate, train, tune, index or quality (default: from the spec)."),
    ] = None,
    address: Address = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job's id and return at once.")
    ] = False,
) -> None:
    """Run a spec on a Ray cluster as a Ray Job: the same `weft` command, with this folder
    (less .gitignore's and .rayignore's) and Weft's code. Streams the job's logs until it
    ends and exits with its exit code."""
    from weft.jobs import follow, submit
    from weft.jobs.kinds import parse_kind

    with user_errors():
        job = submit.prepare(spec, parse_kind(kind) if kind else None)
        where = follow.address(address)
        api = follow.client(where)
        sizes = submit.sizes(job)
        job_id = submit.send(api, job, where)
    mib = {k: v / 2**20 for k, v in sizes.items()}
    console.print(
        f"submitted [bold]{job_id}[/]: weft {' '.join(job.arguments)} on {where}\n"
        f"runtime env: working dir {mib['working_dir']:.2f} MiB (this folder, less "
        f".gitignore's and .rayignore's), Weft's code {mib['code']:.2f} MiB (compressed)",
        highlight=False,
    )
    if no_wait:
        console.print(f"follow it with: weft jobs logs {job_id} --follow", highlight=False)
        return
    raise typer.Exit(_follow(api, job_id))


jobs_app = typer.Typer(
    help="Ray Jobs on a cluster: list, status, logs, stop.", no_args_is_help=True
)


@jobs_app.command("list")
def jobs_list(address: Address = None) -> None:
    """The cluster's submitted jobs, newest first."""
    from weft.jobs import follow

    with user_errors():
        views = follow.jobs(follow.client(follow.address(address)))
    table = Table(title=f"jobs on {follow.address(address)}")
    table.add_column("id", no_wrap=True)
    for column in ("status", "kind", "name", "user", "started", "ended"):
        table.add_column(column)
    for v in views:
        table.add_row(v.id, v.status, v.kind, v.name, v.user, _when(v.started), _when(v.ended))
    console.print(table)


@jobs_app.command("status")
def jobs_status(job_id: JobId, address: Address = None) -> None:
    """One job: its state, MLflow runs, output and message; exits with its exit code once it
    has ended (0 while it runs)."""
    from weft.jobs import follow

    with user_errors():
        view = follow.status(follow.client(follow.address(address)), job_id)
    _print_job(view)
    raise typer.Exit(view.code if view.done else 0)


@jobs_app.command("logs")
def jobs_logs(
    job_id: JobId,
    address: Address = None,
    follow_logs: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the job ends; its exit code.")
    ] = False,
) -> None:
    """The job's logs so far, or (--follow) as they come until it ends."""
    from weft.jobs import follow

    with user_errors():
        api = follow.client(follow.address(address))
        if not follow_logs:
            follow.status(api, job_id)
            sys.stdout.write(api.get_job_logs(job_id))
            return
    raise typer.Exit(_follow(api, job_id))


@jobs_app.command("stop")
def jobs_stop(job_id: JobId, address: Address = None) -> None:
    """Stop a job (Ray sends its driver SIGTERM, then SIGKILL)."""
    from weft.jobs import follow

    where = follow.address(address)
    with user_errors():
        stopped = follow.stop(follow.client(where), job_id, where)
    err_console.print(f"job {job_id}: {'stopping' if stopped else 'had ended already'}")


def _follow(api: Any, job_id: str) -> int:
    """Stream the job's logs until it ends, then print it; its exit code. Ctrl-C stops the
    streaming, not the job."""
    from weft.jobs import follow

    try:
        with user_errors():
            view = follow.stream(api, job_id, sys.stdout.write)
    except KeyboardInterrupt:
        err_console.print(
            f"stopped following; the job goes on (weft jobs stop {job_id} stops it)",
            highlight=False,
        )
        return 130
    sys.stdout.flush()
    _print_job(view)
    return view.code


def _print_job(view: JobView) -> None:
    from weft.jobs import follow

    table = Table(title=f"job {view.id}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = [
        ("status", view.status),
        ("command", view.entrypoint),
        ("kind / name", f"{view.kind} / {view.name}"),
        ("submitted by", view.user),
        ("started / ended", f"{_when(view.started)} / {_when(view.ended)}"),
    ]
    if view.done:
        rows.append(("exit code", str(view.code)))
    runs = follow.mlflow_runs(view.id)
    if runs:
        from weft.tracking import tracking_uri

        rows.append(("MLflow runs", f"{', '.join(runs)} ({tracking_uri()})"))
    if view.output:
        rows.append(("output", view.output))
    if view.message and view.status != "SUCCEEDED":
        rows.append(("message", view.reason))
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _when(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"
