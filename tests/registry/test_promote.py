"""Promotion: a version takes the alias only through the gate; the champion stays put."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from weft import audit
from weft.models import registry
from weft.models.tokenizer import Tokenizer
from weft.registry.promote import move_alias, promote, registered
from weft.registry.pyfunc import log_model
from weft.registry.spec import PromoteSpec
from weft.specs import SpecError, parse_spec

SPEC = parse_spec(
    PromoteSpec,
    {
        "model": "clip-test",
        "gate": {
            "metrics": {
                "val/loss": {"better": "lower", "threshold": 3.0},
                "val/zero_shot_top1": {"better": "higher"},
            },
            "champion_tolerance": 0.1,
        },
    },
)


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def trained_run(tmp_path: Path, name: str, **metrics: float) -> str:
    """An MLflow run like a training run's: held-out metrics, lineage tags, a CLIP model."""
    torch.manual_seed(0)
    directory = registry.save(
        registry.build("clip-tiny"), tmp_path / name, Tokenizer.train(["a b c"] * 5, 280)
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_metrics({k.replace("__", "/"): v for k, v in metrics.items()})
        mlflow.set_tags(
            {
                "weft.dataset.content_hash": "abc123",
                "weft.model.kind": "clip",
                "weft.generation.cfg_scale": "4.5",  # as a guidance sweep's run has them
            }
        )
        log_model(directory, name)
    return str(run.info.run_id)


def test_a_passing_model_takes_the_alias_and_loads_by_it(tracking: Path) -> None:
    run = trained_run(tracking, "first", val__loss=2.5, val__zero_shot_top1=0.4)
    decision = promote(SPEC, run)
    assert decision.passed and decision.alias == "champion" and decision.version == "1"
    served = mlflow.pyfunc.load_model("models:/clip-test@champion")
    out = served.predict(pd.DataFrame({"text": ["a b"]}))
    assert np.stack(out["embedding"].to_list()).shape == (1, 32)
    version = mlflow.MlflowClient().get_model_version("clip-test", "1")
    assert version.tags["dataset_content_hash"] == "abc123"
    assert version.tags["weft.gate.passed"] == "true" and version.tags["run_id"] == run
    assert version.tags["generation.cfg_scale"] == "4.5"
    logged = mlflow.get_run(run).outputs.model_outputs[0].model_id
    assert version.source == f"models:/{logged}"  # the logged model, by its id


def test_a_failing_model_is_refused_and_the_champion_stays(tracking: Path) -> None:
    promote(SPEC, trained_run(tracking, "first", val__loss=2.5, val__zero_shot_top1=0.4))
    worse = trained_run(tracking, "worse", val__loss=2.6, val__zero_shot_top1=0.2)
    decision = promote(SPEC, worse)
    assert not decision.passed and decision.alias == "challenger"
    assert decision.champion_version == "1"
    failed = {c.metric: c.reason for c in decision.checks if not c.passed}
    assert failed == {"val/zero_shot_top1": "worse than the champion"}  # 2.6 is within 10 %
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("clip-test", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("clip-test", "challenger").version) == "2"
    listed = {v.version: v for v in registered()}
    assert listed["1"].aliases == ["champion"] and listed["1"].gate == "passed"
    assert listed["2"].gate.startswith("failed: val/zero_shot_top1")


def test_promotions_and_alias_moves_leave_audit_lines(
    tracking: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(audit.AUDIT, str(tracking / "audit"))
    monkeypatch.setenv(audit.USER, "ops")
    promote(SPEC, trained_run(tracking, "first", val__loss=2.5, val__zero_shot_top1=0.4))
    promote(SPEC, trained_run(tracking, "worse", val__loss=2.6, val__zero_shot_top1=0.2))
    lines = [(e.who, e.action, e.target, e.outcome, e.detail) for e in audit.read()]
    assert [line[:4] for line in lines] == [
        ("ops", "promote", "clip-test/1", "ok"),
        ("ops", "alias", "clip-test@champion", "ok"),
        ("ops", "promote", "clip-test/2", "refused"),
        ("ops", "alias", "clip-test@challenger", "ok"),
    ]
    assert lines[1][4] == {"to": "1", "previous": "-"}


def test_a_threshold_and_a_missing_metric_fail_the_gate(tracking: Path) -> None:
    decision = promote(SPEC, trained_run(tracking, "bad", val__loss=3.5))
    reasons = {c.metric: c.reason for c in decision.checks}
    assert reasons == {
        "val/loss": "above the threshold",
        "val/zero_shot_top1": "not logged by the run",
    }
    assert decision.alias == "challenger"


def test_a_run_without_a_model_is_refused_naming_it(tracking: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
    with mlflow.start_run() as run:
        mlflow.log_metrics({"val/loss": 1.0, "val/zero_shot_top1": 0.5})
    with pytest.raises(SpecError, match=f"run {run.info.run_id}: logged no model to register"):
        promote(SPEC, run.info.run_id)


def test_an_alias_rolls_back_only_to_a_version_that_passed_its_gate(
    tracking: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(audit.AUDIT, str(tracking / "audit"))
    promote(SPEC, trained_run(tracking, "first", val__loss=2.5, val__zero_shot_top1=0.4))
    promote(SPEC, trained_run(tracking, "second", val__loss=2.4, val__zero_shot_top1=0.45))
    promote(SPEC, trained_run(tracking, "worse", val__loss=2.6, val__zero_shot_top1=0.2))
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("clip-test", "champion").version) == "2"
    assert move_alias("clip-test", "champion", "1") == "2"  # the rollback
    assert str(client.get_model_version_by_alias("clip-test", "champion").version) == "1"
    with pytest.raises(SpecError, match=r"clip-test/3 did not pass its gate \(val/zero_shot"):
        move_alias("clip-test", "champion", "3")
    with pytest.raises(SpecError, match="clip-test has no version 9"):
        move_alias("clip-test", "champion", "9")
    assert move_alias("clip-test", "champion", "3", unchecked=True) == "1"
    moves = [(e.target, e.detail) for e in audit.read() if e.action == "alias"][-2:]
    assert moves == [
        ("clip-test@champion", {"to": "1", "previous": "2"}),
        ("clip-test@champion", {"to": "3", "previous": "1"}),
    ]
