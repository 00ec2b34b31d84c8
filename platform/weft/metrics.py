"""Weft's own series on Ray's Prometheus endpoint, beside Ray's (Ray prefixes each name with
`ray_`): curation rows by stage and decision, and a training run's step, loss and samples/s.
Serving's (requests and latency per route, served versions) are `weft.serve.telemetry`'s.

Each process records its own and Ray's metrics agent on its node exports them. A counter
keeps its total; a gauge that is not reported again is dropped after about two export
intervals (10 s each by default), so a training run's gauges live as long as the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

# A training run's values that become gauges: MLflow's metric name → the series.
TRAINING = {
    "step": "weft_train_step",
    "loss": "weft_train_loss",
    "samples_per_s": "weft_train_samples_per_second",
}


@dataclass(frozen=True)
class Row:
    """Rows of a curation run that one stage decided one way, for one reason."""

    stage: str
    decision: str  # kept, removed, quarantined
    reason: str
    rows: int


def tag_keys(*names: str) -> tuple[str]:
    """Tag names as Ray's signature types them (it says a 1-tuple, and takes any)."""
    return cast(tuple[str], names)


@cache
def _curation() -> Any:
    from ray.util.metrics import Counter

    return Counter(
        "weft_curation_rows",
        description="Rows of curation runs, by the stage that decided and the decision.",
        tag_keys=tag_keys("pipeline", "stage", "decision", "reason"),
    )


@cache
def _training() -> dict[str, Any]:
    from ray.util.metrics import Gauge

    return {
        key: Gauge(name, description=f"A training run's latest {key}.", tag_keys=tag_keys("run"))
        for key, name in TRAINING.items()
    }


def curation(pipeline: str, rows: Iterable[Row]) -> None:
    counter = _curation()
    for row in rows:
        if row.rows <= 0:  # a counter only goes up (Ray refuses 0)
            continue
        tags = {"pipeline": pipeline, "stage": row.stage, "decision": row.decision}
        counter.inc(row.rows, tags=tags | {"reason": row.reason})


def training(run: str, values: Mapping[str, float], step: int) -> None:
    gauges = _training()
    for key, value in {**values, "step": float(step)}.items():
        if key in gauges:
            gauges[key].set(float(value), tags={"run": run})
