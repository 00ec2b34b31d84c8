"""Connect to Ray: the cluster at `RAY_ADDRESS`, or a local instance started here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

import weft


def connect(num_cpus: int | None = None) -> None:
    """Join the cluster at `RAY_ADDRESS` if set, else start a local Ray (dashboard on 127.0.0.1).

    On a remote cluster the `weft` package travels with the job (`py_modules`), so workers
    run the driver's code; its dependencies come from the cluster image (`infra/`).
    Idempotent: a process that is already connected keeps its connection.
    """
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or None
    if address is None:
        ray.init(num_cpus=num_cpus, dashboard_host="127.0.0.1", logging_level=logging.WARNING)
    else:
        package = str(Path(weft.__file__).parent)
        ray.init(
            address=address, runtime_env={"py_modules": [package]}, logging_level=logging.WARNING
        )
