"""`weft tune` on real Ray Tune, Train and MLflow: nested runs, ASHA stopping trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.integration.test_train import clip_spec
from weft.specs import parse_spec
from weft.tune.spec import SweepSpec
from weft.tune.sweep import COMPLETED, STOPPED, sweep

pytestmark = pytest.mark.integration


def sweep_spec(data: str, out: Path, **fields: Any) -> SweepSpec:
    """The training tests' CLIP job as the base: one worker, reporting at every step."""
    base = clip_spec(
        data,
        out / "runs",
        name="it-base",
        optim={"lr": 1e-3, "warmup_steps": 1, "max_steps": 2, "batch_size": 8},
        workers={"count": 1, "cpus": 0.5},
        checkpoint={"every_steps": 1},
        eval={"every_steps": 1, "batches": 1},
    )
    body = {"name": "it-sweep", "base": base, "output": str(out / "sweeps")}
    return parse_spec(SweepSpec, body | fields)


def test_asha_stops_the_trailing_trials_and_every_trial_nests_under_the_sweep(
    curated: tuple[str, str], tmp_path: Path
) -> None:
    # Ranked by the learning rate each trial reports: a known order, so ASHA's decision at
    # its first rung is known too: trials run one at a time, the later ones trail.
    spec = sweep_spec(
        curated[0],
        tmp_path,
        space={"optim.lr": {"grid": [0.004, 0.002, 0.001]}},
        metric="lr",
        mode="max",
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
    )
    result = sweep(spec)
    by_lr = {t.values["optim.lr"]: t for t in result.trials}
    assert [by_lr[lr].status for lr in (0.004, 0.002, 0.001)] == [COMPLETED, STOPPED, STOPPED]
    assert result.best is by_lr[0.004] and result.best.reports == 2
    assert by_lr[0.002].reports == by_lr[0.001].reports == 1
    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["weft.sweep.best_trial"] == result.best.id
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "sweep")}
    assert {"sweep/trials.json", "sweep/trials.csv", "sweep/lr_vs_optim.lr.png"} <= artifacts
    for trial in result.trials:
        child = client.get_run(trial.run_id)
        assert child.data.tags["mlflow.parentRunId"] == result.run_id
        assert float(child.data.params["optim.lr"]) == trial.values["optim.lr"]
        assert child.info.status == ("FINISHED" if trial.status == COMPLETED else "KILLED")
    assert result.best.model == f"runs:/{result.best.run_id}/model"
