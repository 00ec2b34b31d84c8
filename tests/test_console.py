"""Where Ray's output goes: as Ray prints it on a terminal; into the Ray session's logs when
weft's output is not one (`make demo > log`, `| tee`, CI). No Ray is started here."""

from __future__ import annotations

import copy
import io
import logging
import os

import pytest
import yaml
from ray.data import DataContext
from ray.data._internal.logging import DEFAULT_CONFIG, configure_logging

from weft import cluster

LOG_ENV = ("RAY_TQDM", "RAY_DATA_LOGGING_CONFIG", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


class _Out(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _unset(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset `names` for the test; whatever the test sets is undone after it."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.mark.parametrize(("tty", "mode"), [(True, "terminal"), (False, "log")])
def test_the_console_follows_standard_output(
    monkeypatch: pytest.MonkeyPatch, tty: bool, mode: str
) -> None:
    _unset(monkeypatch, cluster.CONSOLE)
    monkeypatch.setattr("sys.stdout", _Out(tty))
    assert cluster.console() == mode
    assert cluster.train_log_level() == ("INFO" if tty else "WARNING")
    assert cluster.tune_verbosity() == (1 if tty else 0)


def test_a_set_console_wins_and_a_bad_one_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", _Out(False))
    monkeypatch.setenv(cluster.CONSOLE, "terminal")  # Ray's own output in CI, to debug
    assert cluster.console() == "terminal"
    monkeypatch.setattr("sys.stdout", _Out(True))
    monkeypatch.setenv(cluster.CONSOLE, "log")
    assert cluster.console() == "log"
    monkeypatch.setenv(cluster.CONSOLE, "quiet")
    assert cluster.console() == "terminal"


def test_a_terminal_keeps_rays_output_as_it_is() -> None:
    assert cluster.console_env("terminal") == {cluster.CONSOLE: "terminal"}


def test_a_log_sends_rays_chatter_to_its_logs() -> None:
    env = cluster.console_env("log")
    assert env[cluster.CONSOLE] == "log"
    assert env["RAY_TQDM"] == "0"  # Ray Data in workers: log lines, not bars for the driver
    assert env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.path.isfile(env["RAY_DATA_LOGGING_CONFIG"])


def test_ray_data_logging_is_rays_own_but_for_the_console_level() -> None:
    """A Ray upgrade that changes Ray Data's default logging shows here."""
    ours = yaml.safe_load(cluster.RAY_DATA_LOGGING.read_text())
    theirs = copy.deepcopy(DEFAULT_CONFIG)
    theirs["handlers"]["console"]["level"] = "WARNING"
    assert ours == theirs
    assert theirs["handlers"]["file"]["class"].endswith("SessionFileHandler")  # the session's


def test_a_driver_that_imported_ray_data_is_set_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray Data reads its settings on import, which in a driver comes before `connect`; a
    variable the user set wins."""
    _unset(monkeypatch, cluster.CONSOLE, *LOG_ENV)
    context = DataContext.get_current()
    saved, context.use_ray_tqdm = context.use_ray_tqdm, True
    monkeypatch.setattr("sys.stdout", _Out(False))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    try:
        cluster._set_console()
        assert os.environ["RAY_TQDM"] == "0" and context.use_ray_tqdm is False
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
        console = next(h for h in logging.getLogger("ray.data").handlers if h.name == "console")
        assert console.level == logging.WARNING
    finally:
        monkeypatch.undo()
        context.use_ray_tqdm = saved
        configure_logging()  # Ray Data's own again, for the tests after this one
