"""Specs `train` refuses before it starts anything (no Ray, no MLflow run), for what the spec
alone cannot tell (`tests/train/test_spec.py` has the rules checked on load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weft import storage
from weft.specs import SpecError, parse_spec
from weft.train.run import train
from weft.train.spec import TrainSpec


def diffusion(**overrides: Any) -> TrainSpec:
    body = {"name": "t", "model": "diffusion-tiny", "data": {"uri": "unused"}}
    return parse_spec(TrainSpec, body | overrides)


def test_a_missing_clip_judge_is_refused_before_training(tmp_path: Path) -> None:
    spec = diffusion(eval={"clip": str(tmp_path / "no-such-clip")})
    with pytest.raises(SpecError, match=r"eval\.clip: .*no-such-clip"):
        train(spec)


def test_an_output_that_cannot_be_written_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    spec = diffusion(output=str(tmp_path / "a-file" / "runs"))
    with pytest.raises(storage.StorageError, match=f"{tmp_path}/a-file/runs"):
        train(spec)  # before the fix: Ray's controller died at its start, with a traceback
