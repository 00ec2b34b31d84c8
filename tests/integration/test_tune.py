"""`weft tune` on real Ray Tune, Train and MLflow: nested runs, ASHA stopping trials, a
guidance sweep whose chosen setting travels with the model into the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import torch

from tests.integration.test_train import clip_spec
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.registry.promote import best_of_sweep, promote
from weft.registry.spec import PromoteSpec
from weft.specs import parse_spec
from weft.tune.guidance import SCORES, guidance_sweep
from weft.tune.spec import GuidanceSpec, SweepSpec
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
    assert result.model == f"runs:/{result.best.run_id}/model"


def saved(directory: Path, name: str) -> str:
    torch.manual_seed(0)
    captions = ["a red circle on blue", "a small green square against white"] * 5
    return str(registry.save(registry.build(name), directory, Tokenizer.train(captions, 280)))


def test_a_guidance_sweep_scores_each_setting_and_saves_the_chosen_one_with_the_model(
    curated: tuple[str, str], tmp_path: Path
) -> None:
    spec = parse_spec(
        GuidanceSpec,
        {
            "name": "it-cfg",
            "model": saved(tmp_path / "diffusion", "diffusion-tiny"),
            "judge": saved(tmp_path / "clip", "clip-tiny"),
            "data": {"uri": curated[0], "val_percent": 50},
            "prompts": 6,
            "space": {"cfg_scale": {"grid": [0.0, 6.0]}, "steps": {"grid": [2]}},
            "objective": {"frechet_within_percent": None},
            "output": str(tmp_path / "sweeps"),
        },
    )
    result = guidance_sweep(spec)
    assert [t.status for t in result.trials] == [COMPLETED, COMPLETED]
    assert all(set(t.metrics) == set(SCORES) for t in result.trials)
    best = max(result.trials, key=lambda t: t.metrics["clip_score"])
    assert result.best == best and result.model == f"runs:/{result.run_id}/model"
    saved_model, _ = registry.load(tmp_path / "sweeps" / "it-cfg" / "model")
    assert saved_model.config.generation.cfg_scale == best.values["cfg_scale"]  # type: ignore[union-attr]
    assert saved_model.config.generation.steps == 2  # type: ignore[union-attr]
    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["weft.generation.cfg_scale"] == str(best.values["cfg_scale"])
    assert parent.data.metrics["clip_score"] == best.metrics["clip_score"]
    for trial in result.trials:
        child = client.get_run(trial.run_id)
        assert child.data.tags["mlflow.parentRunId"] == result.run_id
        assert float(child.data.params["cfg_scale"]) == trial.values["cfg_scale"]
        assert [a.path for a in client.list_artifacts(trial.run_id)] == ["samples.png"]
    gate = {"model": "it-diffusion", "gate": {"metrics": {"clip_score": {"better": "higher"}}}}
    decision = promote(parse_spec(PromoteSpec, gate), best_of_sweep(result.run_id))
    assert decision.passed
    version = client.get_model_version("it-diffusion", decision.version)
    assert version.tags["generation.cfg_scale"] == str(best.values["cfg_scale"])
    served = mlflow.pyfunc.load_model("models:/it-diffusion@champion")
    params = {p.name: p.default for p in served.metadata.get_params_schema().params}
    assert params["cfg_scale"] == best.values["cfg_scale"] and params["steps"] == 2
    drawn = served.predict(pd.DataFrame({"prompt": ["a red circle on blue"]}))
    assert drawn["image"][0].startswith(b"\x89PNG")
