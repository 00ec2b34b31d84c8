"""Sweep specs are checked on load: every swept path names a field of the training spec."""

from __future__ import annotations

from typing import Any

import pytest

from weft.specs import SpecError, parse_spec
from weft.tune.spec import SweepSpec, trial_spec

BASE = {
    "name": "base",
    "model": "clip-tiny",
    "data": {"uri": "curated"},
    "eval": {"every_steps": 5},
    "checkpoint": {"every_steps": 10},
}


def sweep(**fields: Any) -> SweepSpec:
    body = {"name": "s", "base": BASE, "space": {"optim.lr": {"choice": [0.001, 0.01]}}}
    return parse_spec(SweepSpec, body | fields, "sweep.yaml")


def test_swept_and_fixed_values_land_at_their_paths_model_fields_included() -> None:
    spec = sweep(
        fixed={"optim.max_steps": 20},
        space={
            "model.init_temperature": {"log_uniform": [0.01, 0.2]},
            "model.learn_temperature": {"grid": [True, False]},
        },
    )
    trial = trial_spec(spec.trial_base, {"model.init_temperature": 0.05}, name="s-1")
    assert (trial.name, trial.optim.max_steps) == ("s-1", 20)
    assert trial.model.name == "clip-tiny"
    assert trial.model.overrides == {"init_temperature": 0.05}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"space": {"optim.lrr": {"choice": [1]}}},
            "space: optim.lrr = 1: optim.lrr: no such field",
        ),
        ({"space": {"optim.lr": {"choice": ["fast"]}}}, "space: optim.lr = 'fast': .*optim.lr"),
        ({"space": {"optim.lr": {"uniform": [1, 0]}}}, r"space.optim.lr: \[low, high\] needs low"),
        ({"space": {"optim.lr": {"choice": [1], "grid": [2]}}}, "give exactly one of"),
        ({"space": {"optim.lr": {"log_uniform": [0, 1]}}}, "log_uniform needs low > 0"),
        ({"fixed": {"optim.steps": 3}}, "fixed: optim.steps: no such field"),
        ({"space": {}}, "space: Dictionary should have at least 1 item"),
        ({"base": "no/such/spec.yaml"}, "base: .*cannot read the training spec no/such/spec.yaml"),
        ({"fixed": {"checkpoint.every_steps": 7}}, "every_steps \\(7\\) must be a multiple"),
    ],
)
def test_a_bad_sweep_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        sweep(**fields)


def test_a_metric_that_is_not_held_out_needs_no_evaluation_at_each_report() -> None:
    assert sweep(metric="lr", mode="max", fixed={"checkpoint.every_steps": 7}).metric == "lr"
