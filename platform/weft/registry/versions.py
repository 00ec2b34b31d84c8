"""A registered model version named the way users name it: `name@alias`, `name/version` or
the same behind `models:/`, resolved to the version it is now; and the training run that
made it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from weft.specs import SpecError
from weft.tracking import tracking_uri

REF = re.compile(
    r"^(?:models:/)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<alias>[A-Za-z][\w-]*)|/(?P<version>\d+))$"
)


# The prefix of the tags that record a version's gate (`weft.gate.passed`, `.failed`, ...).
GATE = "weft.gate"


def gate_result(tags: dict[str, str]) -> str | None:
    """A version's gate from its tags: `passed` or `failed: <why>`; None if it had none."""
    passed = tags.get(f"{GATE}.passed")
    if passed is None:
        return None
    return "passed" if passed == "true" else f"failed: {tags.get(f'{GATE}.failed', '')}"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its name and number, the run that made it, its tags."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        """The version by number: what stays the same when an alias moves."""
        return f"models:/{self.name}/{self.version}"

    @property
    def gate(self) -> str:
        """`passed`, `failed: <why>`, or `not gated` (registered without `weft promote`)."""
        return gate_result(self.tags) or "not gated"

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def resolve(ref: str) -> ModelVersion:
    """The version `ref` names now; a SpecError says what is wrong with it."""
    found = REF.match(ref.strip())
    if not found:
        raise SpecError(f"{ref}: not a registered model reference (name@alias or name/version)")
    name, alias, number = found["name"], found["alias"], found["version"]
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    try:
        with _impatient():
            if alias:
                version = client.get_model_version_by_alias(name, alias)
            else:
                version = client.get_model_version(name, number)
    except MlflowException as err:
        if "Max retries exceeded" in err.message:  # requests' words for no answer at all
            raise SpecError(
                f"{ref}: the model registry at {tracking_uri()} does not answer"
            ) from None
        raise SpecError(f"{ref}: not found in {tracking_uri()} ({err.message})") from None
    return ModelVersion(
        name=name,
        version=str(version.version),
        run_id=str(version.run_id or version.tags.get("run_id", "")),
        tags=dict(version.tags),
        aliases=tuple(version.aliases or ()),
    )


# A tracking server that is down fails a lookup in seconds, not after MLflow's default of
# 7 retries with exponential backoff (4 minutes measured); settings a user made are kept.
PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


@contextmanager
def _impatient() -> Iterator[None]:
    unset = [name for name in PATIENCE if name not in os.environ]
    os.environ.update({name: PATIENCE[name] for name in unset})
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


@dataclass(frozen=True)
class TrainingRun:
    """The MLflow run that made a version, as its lineage shows it."""

    run_id: str
    name: str
    experiment: str
    status: str
    started: str  # ISO 8601, UTC
    dataset_uri: str
    dataset_content_hash: str
    datasets: tuple[str, ...]  # its dataset inputs: `<name> (<digest>, <context>)`
    job: str  # the Ray Job that ran it, if one did
    user: str
    git_commit: str


def training_run(run_id: str) -> TrainingRun:
    """The run `run_id` as lineage names it; a SpecError if the tracking store lacks it."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    try:
        with _impatient():
            run = client.get_run(run_id)
            experiment = client.get_experiment(run.info.experiment_id).name
    except MlflowException as err:
        raise SpecError(f"run {run_id}: not found in {tracking_uri()} ({err.message})") from None
    tags = run.data.tags
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return TrainingRun(
        run_id=run_id,
        name=run.info.run_name or "",
        experiment=experiment,
        status=run.info.status,
        started=datetime.fromtimestamp(run.info.start_time / 1e3, UTC).isoformat("T", "seconds"),
        dataset_uri=tags.get("weft.dataset.uri", ""),
        dataset_content_hash=tags.get("weft.dataset.content_hash", ""),
        datasets=tuple(
            f"{i.dataset.name} ({i.dataset.digest}, "
            f"{next((t.value for t in i.tags if t.key == 'mlflow.data.context'), '-')})"
            for i in inputs
        ),
        job=tags.get("weft.job", ""),
        user=tags.get("weft.user", ""),
        git_commit=tags.get("weft.git_commit", ""),
    )
