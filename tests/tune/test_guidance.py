"""The guidance sweep's objective: the best CLIP score among settings that keep the Fréchet
distance near its lowest."""

from __future__ import annotations

from typing import Any

import pytest

from weft.specs import parse_spec
from weft.tune.guidance import choose
from weft.tune.spec import GuidanceSpec
from weft.tune.sweep import COMPLETED, STOPPED, Trial


def spec(**objective: Any) -> GuidanceSpec:
    body = {
        "name": "g",
        "model": "m",
        "judge": "j",
        "data": {"uri": "d"},
        "space": {"cfg_scale": {"grid": [1.0]}},
        "objective": objective,
    }
    return parse_spec(GuidanceSpec, body)


def trial(cfg: float, clip: float, frechet: float, status: str = COMPLETED) -> Trial:
    scores = {"clip_score": clip, "frechet": frechet, "seconds_per_image": 0.1}
    return Trial(f"t{cfg:g}", {"cfg_scale": cfg}, scores, 1, status)


TRIALS = [trial(1, 20, 10), trial(3, 24, 11), trial(5, 27, 12.6), trial(9, 31, 20)]


@pytest.mark.parametrize(
    ("objective", "chosen"),
    [
        ({"frechet_within_percent": 25}, 3),  # cfg 5's 12.6 is 26 % above the lowest, 10
        ({"frechet_within_percent": 30}, 5),
        ({"frechet_within_percent": 0}, 1),
        ({"frechet_within_percent": None}, 9),
        ({"metric": "frechet", "frechet_within_percent": None}, 1),
    ],
)
def test_the_objective_picks_the_best_score_within_the_frechet_bound(
    objective: dict[str, Any], chosen: float
) -> None:
    best = choose(TRIALS, spec(**objective))
    assert best is not None and best.values["cfg_scale"] == chosen


def test_only_completed_trials_are_chosen() -> None:
    assert choose([trial(1, 20, 10, STOPPED)], spec()) is None
    assert choose([trial(1, 20, 10, STOPPED), trial(2, 10, 30)], spec()) == trial(2, 10, 30)
