"""`weft tune`: a sweep of a training spec on Ray Tune, tracked in MLflow.

Each trial is a function trainable that runs the base spec, with its values set, as a real
Ray Train job (Ray 2.60 tunes a trainer this way, not as `Tuner(TorchTrainer)`); Train's
reports reach Tune through `TuneReportCallback`, so ASHA can stop a trailing trial at any
checkpoint. MLflow holds one parent run for the sweep and, nested under it, the trial's
own training run; the parent gets the trials table and a plot of the metric against each
swept value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from weft import cluster, storage
from weft.tracking import tracking_uri, use_experiment
from weft.train.run import absolute_paths, train
from weft.train.spec import TrainSpec
from weft.tune.plots import metric_plots
from weft.tune.spec import AnySweep, Dimension, SweepSpec, trial_spec

COMPLETED, STOPPED, FAILED = "completed", "stopped early", "failed"
# A trial's own process only drives its trainer (Tune refuses a bundle of no resources).
TRIAL_CPUS = {"cpu": 0.01}


@dataclass(frozen=True)
class Trial:
    """A trial's values, its last reported metrics, and its MLflow run."""

    id: str
    values: dict[str, Any]
    metrics: dict[str, float]
    reports: int
    status: str
    run_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    spec: AnySweep
    run_id: str | None  # the parent MLflow run
    trials: list[Trial]
    best: Trial | None = field(default=None)
    model: str | None = field(default=None)  # the best trial's model, by its MLflow URI


@dataclass(frozen=True)
class _Context:
    """What every trial needs besides its values (shipped once, by `tune.with_parameters`)."""

    base: TrainSpec
    sweep: str
    parent: str | None
    tracking_uri: str


def sweep(spec: SweepSpec) -> SweepResult:
    """Run the sweep; return every trial and the best completed one."""
    # Ray Train asks the dashboard's state API whether a stopped trial's trainer is gone
    # before it frees the trainer's CPUs: without it, each early stop would leak them.
    cluster.connect(dashboard=True)
    workers = spec.trial_base.workers
    cluster.check_room(
        "concurrent",
        f"{spec.concurrent} trials of {workers.count} workers of {workers.cpus:g} CPU",
        spec.concurrent * (workers.count * workers.cpus + TRIAL_CPUS["cpu"]),
        "lower concurrent or base.workers",
    )
    parent = _open_parent(spec)
    try:
        grid = _tuner(spec, parent).fit()
        trials = trials_of(grid, spec, parent, [spec.metric], _reports(spec))
        best = _best(trials, spec)
        if parent:
            log_summary(spec, trials, best, model_run=best.run_id if best else None)
    finally:
        if parent:
            mlflow.end_run()
    model = f"runs:/{best.run_id}/model" if best and best.run_id else None
    return SweepResult(spec, parent, trials, best, model)


def _open_parent(spec: SweepSpec) -> str | None:
    if not spec.mlflow.enabled:
        return None
    run = mlflow.start_run(experiment_id=use_experiment(spec.mlflow.experiment), run_name=spec.name)
    mlflow.set_tags({"weft.stage": "tune", "weft.sweep": spec.name})
    mlflow.log_params(
        {
            "metric": spec.metric,
            "mode": spec.mode,
            "scheduler": spec.scheduler.name,
            "samples": spec.samples,
            **{f"space.{p}": f"{d.kind} {d.examples()}" for p, d in spec.space.items()},
        }
    )
    mlflow.log_dict(spec.model_dump(mode="json"), "sweep.yaml")
    return str(run.info.run_id)


def _reports(spec: SweepSpec) -> int:
    """Reports a trial that runs to its end makes: one per checkpoint, and the last step."""
    base = spec.trial_base
    return math.ceil(base.optim.max_steps / base.checkpoint.every_steps)


def _tuner(spec: SweepSpec, parent: str | None) -> tune.Tuner:
    base = absolute_paths(spec.trial_base)  # trials run in folders of their own
    if parent:  # the trials' runs nest under the parent, in its experiment
        base = trial_spec(base, {"mlflow.experiment": spec.mlflow.experiment})
    context = _Context(base, spec.name, parent, tracking_uri())
    out = storage.resolve(spec.output, base.storage)
    return tune.Tuner(
        # the trial only drives its trainer, whose workers take the base spec's resources
        tune.with_resources(tune.with_parameters(_run_trial, context=context), TRIAL_CPUS),
        param_space={path: domain(d) for path, d in spec.space.items()},
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            scheduler=_scheduler(spec),
            num_samples=spec.samples,
            max_concurrent_trials=spec.concurrent,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=out.path,
            storage_filesystem=out.fs,
            verbose=cluster.tune_verbosity(),
        ),
    )


def domain(dimension: Dimension) -> Any:
    """The dimension as a Ray Tune search space."""
    if dimension.choice is not None:
        return tune.choice(dimension.choice)
    if dimension.grid is not None:
        return tune.grid_search(dimension.grid)
    if dimension.uniform is not None:
        return tune.uniform(*dimension.uniform)
    assert dimension.log_uniform is not None
    return tune.loguniform(*dimension.log_uniform)


def _scheduler(spec: SweepSpec) -> TrialScheduler:
    s = spec.scheduler
    if s.name == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        # past the last report: ASHA stops a trial that reaches max_t, and a trial stopped
        # at its last report would end before its model is logged
        max_t=max(_reports(spec), s.grace_period) + 1,
        grace_period=s.grace_period,
        reduction_factor=s.reduction_factor,
    )


def _run_trial(values: dict[str, Any], context: _Context) -> None:
    """One trial: the base spec with the trial's values, trained by Ray Train."""
    trial = tune.get_context().get_trial_id()
    os.environ["MLFLOW_TRACKING_URI"] = context.tracking_uri
    spec = trial_spec(context.base, values, name=f"{context.sweep}-{trial}")
    tags = {"weft.sweep": context.sweep, "weft.sweep.trial": trial}
    if context.parent:
        tags["mlflow.parentRunId"] = context.parent
    train(spec, tags=tags, callbacks=[TuneReportCallback()], end_failed_run=False)


def trials_of(
    grid: tune.ResultGrid, spec: AnySweep, parent: str | None, scores: Sequence[str], reports: int
) -> list[Trial]:
    """Every trial with its last `scores` and its status: completed (it made all `reports`),
    stopped early by the scheduler (its MLflow run is marked killed), or failed with its
    error."""
    runs = _child_runs(spec, parent)
    trials = []
    for result in (grid[i] for i in range(len(grid))):
        metrics = result.metrics or {}
        trial_id = _trial_id(result)
        made = int(metrics.get("training_iteration", 0))
        status = FAILED if result.error else (COMPLETED if made >= reports else STOPPED)
        run_id = runs.get(trial_id)
        if run_id and status != COMPLETED:
            mlflow.MlflowClient().set_terminated(
                run_id, "KILLED" if status == STOPPED else "FAILED"
            )
        trials.append(
            Trial(
                id=trial_id,
                values={p: (result.config or {}).get(p) for p in spec.space},
                metrics={k: float(metrics[k]) for k in scores if metrics.get(k) is not None},
                reports=made,
                status=status,
                run_id=run_id,
                error=str(result.error).splitlines()[0] if result.error else None,
            )
        )
    return sorted(trials, key=lambda t: t.id)


def _trial_id(result: tune.Result) -> str:
    """From its reports, or for a trial that failed before any, its folder's name
    (`<trainable>_<id>_<number>_...`, the id like `a1b2c_00000`)."""
    if result.metrics and "trial_id" in result.metrics:
        return str(result.metrics["trial_id"])
    found = re.search(r"([0-9a-f]{5}_\d{5})", Path(result.path).name)
    return found.group(1) if found else Path(result.path).name


def _child_runs(spec: AnySweep, parent: str | None) -> dict[str, str]:
    """trial id → its MLflow run id."""
    if not parent:
        return {}
    found = mlflow.search_runs(
        experiment_names=[spec.mlflow.experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
        output_format="list",
    )
    return {r.data.tags["weft.sweep.trial"]: r.info.run_id for r in found}


def _best(trials: list[Trial], spec: SweepSpec) -> Trial | None:
    done = [t for t in trials if t.status == COMPLETED and spec.metric in t.metrics]
    if not done:
        return None
    pick = min if spec.mode == "min" else max
    return pick(done, key=lambda t: t.metrics[spec.metric])


def table(trials: list[Trial]) -> pd.DataFrame:
    """The trials as rows: id, each swept value, the metrics, reports, status, run."""
    return pd.DataFrame(
        [
            {
                "trial": t.id,
                **t.values,
                **t.metrics,
                "reports": t.reports,
                "status": t.status,
                "run_id": t.run_id,
            }
            for t in trials
        ]
    )


def log_summary(
    spec: AnySweep, trials: list[Trial], best: Trial | None, model_run: str | None
) -> None:
    """On the parent run: the trials table, the plots, the best trial, and the run whose
    model `weft promote --sweep` registers."""
    frame = table(trials)
    mlflow.log_table(frame, "sweep/trials.json")
    mlflow.log_text(frame.to_csv(index=False), "sweep/trials.csv")
    for name, figure in metric_plots(frame, spec).items():
        mlflow.log_figure(figure, f"sweep/{name}")
    mlflow.log_metrics({"trials.completed": sum(t.status == COMPLETED for t in trials)})
    if best is not None:
        mlflow.log_metric(f"best.{spec.metric}", best.metrics[spec.metric])
        mlflow.set_tags({"weft.sweep.best_trial": best.id, "weft.sweep.best_run": model_run or ""})
