"""Connect to Ray: the cluster at `RAY_ADDRESS`, or a local instance started here."""

from __future__ import annotations

import logging
import os

import ray


def connect(num_cpus: int | None = None) -> None:
    """Join the cluster at `RAY_ADDRESS` if set, else start a local Ray (dashboard on 127.0.0.1).

    Idempotent: a process that is already connected keeps its connection.
    """
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, object] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        kwargs |= {"num_cpus": num_cpus, "dashboard_host": "127.0.0.1", "include_dashboard": True}
    ray.init(address=address, **kwargs)
