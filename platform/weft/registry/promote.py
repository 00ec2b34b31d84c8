"""`weft promote` and `weft models`: versions in MLflow's model registry behind a gate.

`promote` registers the model of a training run (or of a sweep's best trial) as a new
version, checks the held-out metrics that run logged at its last evaluation against the
spec's gate and against the current champion, and only then moves the alias; a version that
fails may take the challenger alias. Version tags carry the lineage and the gate's results.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from weft import audit
from weft.registry.spec import Bound, PromoteSpec
from weft.registry.versions import GATE, gate_result
from weft.specs import SpecError
from weft.tracking import GENERATION_TAG, LINEAGE_TAGS, tracking_uri

# Tags of a run copied onto its versions: where the model came from, and the sweep that
# chose it (a training sweep's trial is nested in it; a guidance sweep's run is the sweep).
LINEAGE = LINEAGE_TAGS | {"mlflow.parentRunId": "sweep_run", "weft.sweep.run": "sweep_run"}


@dataclass(frozen=True)
class Check:
    """One gated metric: the version's value, its threshold, the champion's, the verdict."""

    metric: str
    value: float | None
    threshold: float | None
    champion: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    model: str
    version: str
    run_id: str
    checks: list[Check]
    alias: str | None  # the alias the version took, if any
    champion_version: str | None  # the champion it was compared with

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def _client() -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri())
    return MlflowClient()


def best_of_sweep(sweep_run: str) -> str:
    """The training run of a sweep's best trial, from the sweep's parent run."""
    tags = _run(_client(), sweep_run).data.tags
    if not tags.get("weft.sweep.best_run"):
        raise SpecError(f"--sweep {sweep_run}: not a Weft sweep run with a completed best trial")
    return tags["weft.sweep.best_run"]


def _run(client: MlflowClient, run_id: str) -> mlflow.entities.Run:
    try:
        return client.get_run(run_id)
    except MlflowException as err:
        raise SpecError(f"run {run_id}: not found in {tracking_uri()} ({err.message})") from None


def promote(spec: PromoteSpec, run_id: str) -> Decision:
    """Register the run's model as a new version of `spec.model`, gate it, move the alias."""
    client = _client()
    run = _run(client, run_id)
    champion = _current(client, spec.model, spec.alias)
    checks = [
        _check(name, bound, run.data.metrics.get(name), champion, spec)
        for name, bound in spec.gate.metrics.items()
    ]
    version = _register(client, spec, run, checks)
    passed = all(c.passed for c in checks)
    alias = spec.alias if passed else spec.challenger
    target = f"{spec.model}/{version.version}"
    audit.record("promote", target, "ok" if passed else "refused", run=run_id)
    if alias:
        _move(client, spec.model, alias, str(version.version))
    return Decision(
        spec.model,
        str(version.version),
        run_id,
        checks,
        alias,
        str(champion.version) if champion else None,
    )


def move_alias(
    model: str, alias: str, version: str, *, unchecked: bool = False, who: str | None = None
) -> str | None:
    """Point `model@alias` at `version` (to roll back, or forward again): only a version that
    passed its gate, unless `unchecked`. The version the alias named before, if any; the
    audit log records the move as `who`'s (this process's user by default)."""
    client = _client()
    try:
        found = client.get_model_version(model, version)
    except MlflowException:
        raise SpecError(f"version: {model} has no version {version}") from None
    if found.tags.get(f"{GATE}.passed") != "true" and not unchecked:
        failed = found.tags.get(f"{GATE}.failed") or "no gate result"
        raise SpecError(
            f"version: {model}/{version} did not pass its gate ({failed}); --unchecked moves "
            "the alias anyway"
        )
    return _move(client, model, alias, version, who)


def _move(
    client: MlflowClient, model: str, alias: str, version: str, who: str | None = None
) -> str | None:
    before = _current(client, model, alias)
    client.set_registered_model_alias(model, alias, version)
    previous = str(before.version) if before else None
    audit.record("alias", f"{model}@{alias}", who=who, to=version, previous=previous or "-")
    return previous


def _current(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None  # no such model or alias yet


def _check(
    name: str,
    bound: Bound,
    value: float | None,
    champion: ModelVersion | None,
    spec: PromoteSpec,
) -> Check:
    held = champion.tags.get(f"{GATE}.{name}") if champion else None
    best = float(held) if held not in (None, "") else None
    if value is None:
        return Check(name, None, bound.threshold, best, False, "not logged by the run")
    lower = bound.better == "lower"
    if bound.threshold is not None and (
        value > bound.threshold if lower else value < bound.threshold
    ):
        side = "above" if lower else "below"
        return Check(name, value, bound.threshold, best, False, f"{side} the threshold")
    if best is not None:
        slack = spec.gate.champion_tolerance * abs(best)
        if value > best + slack if lower else value < best - slack:
            return Check(name, value, bound.threshold, best, False, "worse than the champion")
    return Check(name, value, bound.threshold, best, True, "ok")


def _register(
    client: MlflowClient, spec: PromoteSpec, run: mlflow.entities.Run, checks: list[Check]
) -> ModelVersion:
    """A new version of the model from the run's `model`, tagged with its lineage and the
    gate's results."""
    tags = {short: run.data.tags[key] for key, short in LINEAGE.items() if key in run.data.tags}
    tags |= {  # the default generation settings: `weft.generation.cfg_scale` → `generation.…`
        key.removeprefix("weft."): value
        for key, value in run.data.tags.items()
        if key.startswith(GENERATION_TAG)
    }
    tags |= {f"{GATE}.{c.metric}": "" if c.value is None else repr(c.value) for c in checks}
    tags[f"{GATE}.passed"] = str(all(c.passed for c in checks)).lower()
    tags[f"{GATE}.failed"] = ", ".join(f"{c.metric}: {c.reason}" for c in checks if not c.passed)
    tags["run_id"] = run.info.run_id
    try:
        client.get_registered_model(spec.model)
    except MlflowException:
        client.create_registered_model(spec.model, tags={"weft.kind": tags.get("model_kind", "")})
    return mlflow.register_model(_logged_model(run), spec.model, tags=tags)


def _logged_model(run: mlflow.entities.Run) -> str:
    """The URI of the model the run logged last (MLflow 3 registers logged models by id)."""
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise SpecError(f"run {run.info.run_id}: logged no model to register")
    return f"models:/{outputs[-1].model_id}"


@dataclass(frozen=True)
class Listed:
    """A version of a registered model as `weft models` shows it."""

    model: str
    version: str
    aliases: list[str]
    gate: str
    dataset: str
    run_id: str
    generation: str  # the default generation settings, for a model that generates


def registered() -> list[Listed]:
    """Every version of every registered model, newest first within each model."""
    client = _client()
    out = []
    for found in client.search_registered_models():
        model = client.get_registered_model(found.name)  # with its aliases
        aliases: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            aliases.setdefault(str(number), []).append(alias)
        versions = client.search_model_versions(f"name = '{model.name}'")
        for v in sorted(versions, key=lambda v: -int(v.version)):
            out.append(
                Listed(
                    model.name,
                    str(v.version),
                    sorted(aliases.get(str(v.version), [])),
                    gate_result(v.tags) or "-",
                    v.tags.get("dataset_content_hash", "-"),
                    v.tags.get("run_id", v.run_id or "-"),
                    _generation(v.tags),
                )
            )
    return out


def _generation(tags: dict[str, str]) -> str:
    """A version's default generation settings, short: `cfg 7.5, 50 steps, negative '…'`."""
    if "generation.cfg_scale" not in tags:
        return ""
    shown = f"cfg {tags['generation.cfg_scale']}, {tags.get('generation.steps', '?')} steps"
    negative = tags.get("generation.negative_prompt")
    return shown + (f", negative {negative!r}" if negative else "")
