"""A real `mlflow server` on 127.0.0.1 (SQLite store, artifacts served through it), in its
own process group so that stopping it stops its web workers too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.s3server import free_port


@contextmanager
def running_mlflow_server(root: Path) -> Iterator[str]:
    """Start the server with its state under `root`; yield its URI; stop its process group."""
    port = free_port()
    log = (root / "mlflow-server.log").open("wb")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port"]
    command += [str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{root}/mlflow.db"]
    command += ["--artifacts-destination", str(root / "artifacts")]
    proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: see {log.name}") from None
                time.sleep(0.25)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
