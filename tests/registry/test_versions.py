"""References to registered versions, resolved against the tracking store."""

from __future__ import annotations

import os
import socket
import time

import pytest

from weft.registry.versions import PATIENCE, resolve
from weft.specs import SpecError


def test_a_registry_that_does_not_answer_fails_in_seconds_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    start = time.monotonic()
    with pytest.raises(SpecError, match=f"weft-clip@champion: the model registry at {down}"):
        resolve("weft-clip@champion")
    assert time.monotonic() - start < 30  # MLflow's own retries took 4 minutes
    assert not set(PATIENCE) & set(os.environ)  # put back as they were


def test_a_malformed_reference_is_refused_naming_the_forms() -> None:
    with pytest.raises(SpecError, match="name@alias or name/version"):
        resolve("weft clip")
