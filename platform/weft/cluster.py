"""Connect to Ray: the cluster at `RAY_ADDRESS`, or a local instance started here; and the
share of a CPU that Ray Data's tasks take on it, which work on a local Ray must leave free."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import ray
from ray._private import ray_constants

import weft
from weft.specs import SpecError

log = logging.getLogger(__name__)
# Set to 1, a local Ray started here runs its dashboard.
DASHBOARD = "WEFT_DASHBOARD"

# Ray's single-node switch (its default on macOS and Windows), read when a process imports ray.
SINGLE_NODE = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR  # "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Set by Ray in a submitted job's driver: the job's runtime env and metadata.
IN_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"

# Ray Data's share of a CPU per task or actor: training workers, a sweep's trainers and an
# index's actors hold whole CPUs or set shares, and on a small machine whole-CPU data tasks
# would wait behind them forever.
DATA_CPUS = 0.25


# Ray Serve's latency settings for a local Ray started here (measured: docs/serving.md):
# replica code on the replica's own event loop, gRPC between the proxy and the replicas, each
# request's log line written when it happens. Serve's Python proxy stays, on 127.0.0.1: its
# faster HAProxy ingress binds every interface, so only a cluster turns it on
# (infra/kuberay/raycluster.yaml).
SERVE_TUNING = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1",
}

# Where Ray's own output goes: "terminal", as Ray prints it (progress bars, info lines, Train's
# and Tune's reports), or "log": the terminal keeps weft's own output, and Ray's chatter stays
# in the Ray session's logs folder (`logs/ray-data/`, `logs/ray-train-*`, the workers' files).
# Unless set, the driver picks from its standard output (`make demo > log`, `| tee`, CI: log);
# Ray's processes inherit the choice.
CONSOLE = "WEFT_RAY_CONSOLE"
# Ray Data's default logging with a console handler for warnings and errors only.
RAY_DATA_LOGGING = Path(__file__).with_name("ray_data_logging.yaml")


def console() -> str:
    """`terminal` or `log` (`CONSOLE`): as set, else from this process's standard output."""
    mode = os.environ.get(CONSOLE, "")
    if mode in ("terminal", "log"):
        return mode
    return "terminal" if sys.stdout.isatty() else "log"


def console_env(mode: str) -> dict[str, str]:
    """The environment for Ray's processes, this one's included, in console `mode`.

    For `log`: Ray Data in a worker (a training run's data, a sweep's trials) logs its
    progress rather than drawing bars, which the driver printed line after line
    (`RAY_TQDM=0`); Ray Data's info lines, the driver's periodic progress among them, go to
    the session's `logs/ray-data/` alone (`RAY_DATA_LOGGING_CONFIG`); MLflow draws no
    download bars. Warnings and errors still reach the terminal."""
    env = {CONSOLE: mode}
    if mode == "log":
        env["RAY_TQDM"] = "0"
        env["RAY_DATA_LOGGING_CONFIG"] = str(RAY_DATA_LOGGING)
        env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def train_log_level() -> str:
    """Ray Train's console level: in `log` mode its info lines (worker group started,
    checkpoint reported, ...) go to its log files in the session's `logs/` alone."""
    return "WARNING" if console() == "log" else "INFO"


def tune_verbosity() -> int:
    """Ray Tune's `verbose`: its status tables every 30 s and each trial's tables on a
    terminal; none in `log` mode, where weft prints the trials' table at the end."""
    return 0 if console() == "log" else 1


def _set_console() -> None:
    """Apply `console_env` here, before Ray starts its processes (a variable already set
    wins), and to Ray Data if this process imported it already (it reads them on import)."""
    for name, value in console_env(console()).items():
        os.environ.setdefault(name, value)
    if "ray.data" in sys.modules:
        from ray.data import DataContext
        from ray.data._internal.logging import configure_logging

        DataContext.get_current().use_ray_tqdm = os.environ.get("RAY_TQDM", "1") != "0"
        configure_logging()


def connect(num_cpus: int | None = None, dashboard: bool | None = None) -> None:
    """Join the cluster at `RAY_ADDRESS` if set, else start a local Ray on 127.0.0.1 only.

    On a remote cluster the `weft` package travels with the job (`py_modules`), so workers
    run the driver's code; its dependencies come from the cluster image (`infra/`). A Ray
    Job's driver (`weft submit`) has its code in the job's runtime env already. A local
    Ray lives as long as the command that started it; its dashboard starts when asked
    (`dashboard`, else `WEFT_DASHBOARD=1`, `--dashboard`): on 2 cores it adds about a second
    to the start.
    Idempotent: a process that is already connected keeps its connection.
    """
    if ray.is_initialized():
        return
    _set_console()
    address = os.environ.get("RAY_ADDRESS") or None
    if address is None:
        wanted = os.environ.get(DASHBOARD) == "1" if dashboard is None else dashboard
        _start_on_loopback(num_cpus, wanted)
    elif IN_JOB in os.environ:  # a Ray Job's driver: the job's runtime env carries the code
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        package = str(Path(weft.__file__).parent)
        ray.init(
            address=address, runtime_env={"py_modules": [package]}, logging_level=logging.WARNING
        )


def _start_on_loopback(num_cpus: int | None, dashboard: bool) -> None:
    for name, value in SERVE_TUNING.items():  # Ray's processes inherit them; a set one wins
        os.environ.setdefault(name, value)
    _interruptible_workers()
    with loopback_only():
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            logging_level=logging.WARNING,
        )
    if dashboard:
        log.info("Ray dashboard: http://%s", ray._private.worker.get_dashboard_url())


def _interruptible_workers() -> None:
    """Let the local Ray's workers take SIGINT as Python does by default.

    A process started in the background of a non-interactive shell (CI, `nohup ... &`)
    ignores SIGINT, and so does every process it starts. Ray cancels a task (a `limit` that
    has read enough) with SIGINT, and ends its deferral of the signal by calling the worker's
    saved handler; an ignored signal's handler is `SIG_IGN`, not callable, and each
    cancellation logged `TypeError: 'Handlers' object is not callable`. A Python handler
    here is reset to the default at `exec`, and the workers then raise KeyboardInterrupt in
    the cancelled task, as Ray intends."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def loopback_only() -> Iterator[None]:
    """Inside the block, a local Ray started by `ray.init` has every server (GCS, raylet,
    object manager, workers, agents, dashboard, metrics) listen on 127.0.0.1 alone.

    On Linux Ray takes the host's routable address as the node's, and binds to all interfaces;
    it turns 127.0.0.1 given as `_node_ip_address`, or as an address to connect to, into that
    address too. Only in single-node mode does it keep 127.0.0.1 and bind to it. This process
    imported ray already, so the mode is switched here and, through the environment, in the
    processes Ray starts (the dashboard's modules connect back to the GCS by 127.0.0.1); both
    are restored after the block, so that joining a cluster later is unchanged.
    """
    saved = os.environ.get(SINGLE_NODE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_NODE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(SINGLE_NODE)
        else:
            os.environ[SINGLE_NODE] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


def check_room(field: str, holders: str, cpus: float, fix: str, *, free: bool = False) -> None:
    """Refuse `holders` (trainers, actors: what the spec's `field` sets) that take `cpus` of
    the local Ray's CPUs (those `free` now, or all of them) and leave Ray Data's tasks less
    than `DATA_CPUS`: the data would wait for them forever. `fix` says what to lower. A
    cluster joined at `RAY_ADDRESS` may autoscale, which its driver cannot see: not checked."""
    if os.environ.get("RAY_ADDRESS"):
        return
    has = (ray.available_resources() if free else ray.cluster_resources()).get("CPU", 0)
    if cpus + DATA_CPUS > has:
        raise SpecError(
            f"{field}: {holders} need {cpus:g} CPUs and Ray Data's tasks {DATA_CPUS:g}, more "
            f"than the {has:g} the local Ray has{' free' if free else ''}; {fix}"
        )


def stop() -> None:
    """Stop the local Ray this process started, or leave the cluster it joined.

    `ray.shutdown` stops the GCS before the autoscaler's monitor, which then spends its whole
    one-second grace period failing to report its exit to the GCS before Ray kills it anyway;
    the monitor of a local Ray is killed first, at once (measured: shutdown 1.1-1.5 s ->
    0.4 s). Ray's own processes end as they would otherwise.
    """
    node = getattr(ray._private.worker, "_global_node", None)  # None once shut down
    if node is not None and node.is_head():
        with suppress(Exception):  # a private handle: any failure leaves it to ray.shutdown
            node.kill_monitor(check_alive=False)
    ray.shutdown()
