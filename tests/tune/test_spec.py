"""Sweep specs are checked on load: every swept path names a field of the training spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from weft.specs import SpecError, parse_spec
from weft.tune.spec import GuidanceSpec, SweepSpec, load_sweep, trial_spec

BASE = {
    "name": "base",
    "model": "clip-tiny",
    "data": {"uri": "curated"},
    "eval": {"every_steps": 5},
    "checkpoint": {"every_steps": 10},
}

ZERO3 = {"name": "deepspeed", "zero_stage": 3}


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
        (
            {"space": {"model.init_temperature": {"choice": [0.1, 0]}}},
            r"space: model.init_temperature = 0: .*model\.init_temperature: Input should be "
            "greater than 0",
        ),
        (
            {"space": {"model.init_temperatur": {"choice": [0.1]}}},
            r"space: model.init_temperatur = 0.1: .*model\.init_temperatur: Extra inputs",
        ),
        (
            {"fixed": {"model.name": "diffusion-tiny", "strategy": ZERO3}},
            r"fixed: .*strategy\.zero_stage: ZeRO-3 partitions parameters",
        ),
    ],
)
def test_a_bad_sweep_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        sweep(**fields)


def test_a_metric_that_is_not_held_out_needs_no_evaluation_at_each_report() -> None:
    assert sweep(metric="lr", mode="max", fixed={"checkpoint.every_steps": 7}).metric == "lr"


GUIDANCE = {
    "name": "g",
    "model": "runs/diffusion/model",
    "judge": "runs/clip/model",
    "data": {"uri": "curated"},
    "space": {"cfg_scale": {"grid": [1.0, 3.0]}},
}


def test_a_guidance_sweep_takes_the_models_generation_settings() -> None:
    spec = parse_spec(GuidanceSpec, GUIDANCE | {"space": {"negative_prompt": {"grid": ["", "x"]}}})
    assert (spec.metric, spec.mode) == ("clip_score", "max")
    by_frechet = parse_spec(GuidanceSpec, GUIDANCE | {"objective": {"metric": "frechet"}})
    assert by_frechet.mode == "min"


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"cfg": {"grid": [1.0]}}, "cfg: not a generation setting (known: cfg_scale, steps"),
        ({"cfg_scale": {"grid": [-1.0]}}, "cfg_scale = -1.0: Input should be greater than"),
        ({"steps": {"choice": [0]}}, "steps = 0: Input should be greater than 0"),
    ],
)
def test_a_guidance_sweep_of_no_such_setting_is_refused_naming_it(
    space: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(GuidanceSpec, GUIDANCE | {"space": space}, "sweep.yaml")


def test_a_sweep_file_is_a_guidance_sweep_when_it_names_a_model_and_no_base(
    tmp_path: Path,
) -> None:
    guidance, training = tmp_path / "g.yaml", tmp_path / "t.yaml"
    guidance.write_text(yaml.safe_dump(GUIDANCE))
    training.write_text(
        yaml.safe_dump({"name": "t", "base": BASE, "space": {"optim.lr": {"grid": [0.1]}}})
    )
    assert isinstance(load_sweep(guidance), GuidanceSpec)
    assert isinstance(load_sweep(training), SweepSpec)
    with pytest.raises(SpecError, match="base: Field required"):
        training.write_text(yaml.safe_dump({"name": "t", "space": {"optim.lr": {"grid": [0.1]}}}))
        load_sweep(training)
