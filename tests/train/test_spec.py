"""A training spec's rules hold on load: `load_spec` names the file and the field, before
`weft train` connects to Ray or opens an MLflow run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from weft.cli import app
from weft.specs import SpecError, load_spec
from weft.train.spec import TrainSpec


def job(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "job.yaml"
    body = {"name": "t", "model": "clip-tiny", "data": {"uri": "curated"}} | fields
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


def refusal(path: Path) -> str:
    with pytest.raises(SpecError) as err:
        load_spec(TrainSpec, path)
    return str(err.value)


def test_an_unknown_model_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    path = job(tmp_path, model="clip-huge")
    assert refusal(path) == (
        f"{path}: model: unknown model 'clip-huge'; known: captioner-small, captioner-tiny, "
        "clip-conv-tiny, clip-small, clip-tiny, diffusion-small, diffusion-tiny, inspector-small, "
        "inspector-tiny"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"init_temperatur": 0.1},
            "model.init_temperatur: Extra inputs are not permitted (a field of clip-tiny)",
        ),
        (
            {"init_temperature": 0},
            "model.init_temperature: Input should be greater than 0 (a field of clip-tiny)",
        ),
        (
            {"vision": {"width": "wide"}},
            "model.vision.width: Input should be a valid integer, unable to parse string as an "
            "integer (a field of clip-tiny)",
        ),
    ],
)
def test_a_model_override_its_config_refuses_is_named_by_its_path(
    override: dict[str, Any], message: str, tmp_path: Path
) -> None:
    path = job(tmp_path, model={"name": "clip-tiny", **override})
    assert refusal(path) == f"{path}: {message}"


def test_model_overrides_the_config_takes_load_and_name_the_kind(tmp_path: Path) -> None:
    model = {"name": "clip-tiny", "init_temperature": 0.1, "vision": {"depth": 1}}
    spec = load_spec(TrainSpec, job(tmp_path, model=model))
    assert spec.model.overrides == {"init_temperature": 0.1, "vision": {"depth": 1}}
    assert spec.model.kind == "clip"


def test_diffusion_on_zero3_is_refused_naming_the_stage(tmp_path: Path) -> None:
    zero3 = {"name": "deepspeed", "zero_stage": 3}
    path = job(tmp_path, model="diffusion-tiny", strategy=zero3)
    assert refusal(path) == (
        f"{path}: strategy.zero_stage: ZeRO-3 partitions parameters where the diffusion EMA "
        "cannot follow them; use zero_stage 1 or 2, or strategy fsdp"
    )
    # ZeRO-3 for the other kinds, and the diffusion model on ZeRO-2 or FSDP, load
    assert load_spec(TrainSpec, job(tmp_path, strategy=zero3)).strategy.zero_stage == 3
    for strategy in ({"name": "deepspeed", "zero_stage": 2}, {"name": "fsdp", "zero_stage": 3}):
        load_spec(TrainSpec, job(tmp_path, model="diffusion-tiny", strategy=strategy))


def test_weft_train_refuses_a_bad_spec_in_one_line_before_it_starts(tmp_path: Path) -> None:
    path = job(tmp_path, model={"name": "clip-tiny", "init_temperatur": 0.1})
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}: model.init_temperatur: Extra inputs" in " ".join(result.output.split())
