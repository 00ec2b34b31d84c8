"""Weft's own metrics as Ray records them: curation rows (none for a decision no row took)
and a training run's gauges. Scraped from Ray's endpoint in tests/integration/test_serve.py."""

from __future__ import annotations

from typing import Any

import pytest

from weft import metrics


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")  # as Ray's Counter
        self.calls.append(("inc", value, tags))

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("set", value, tags))


def test_a_curation_with_nothing_kept_records_only_the_rows_it_decided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = Recorded()
    monkeypatch.setattr(metrics, "_curation", lambda: counter)
    rows = [
        metrics.Row("output", "kept", "kept", 0),
        metrics.Row("validate", "quarantined", "empty_text", 3),
    ]
    metrics.curation("docs", rows)
    tags = {"pipeline": "docs", "stage": "validate", "decision": "quarantined"}
    assert counter.calls == [("inc", 3, tags | {"reason": "empty_text"})]


def test_a_training_step_sets_the_runs_step_loss_and_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    gauges: dict[str, Any] = {key: Recorded() for key in metrics.TRAINING}
    monkeypatch.setattr(metrics, "_training", lambda: gauges)
    metrics.training("clip", {"loss": 2.5, "lr": 1e-3, "samples_per_s": 40.0}, 10)
    assert {k: g.calls for k, g in gauges.items()} == {
        "step": [("set", 10.0, {"run": "clip"})],
        "loss": [("set", 2.5, {"run": "clip"})],
        "samples_per_s": [("set", 40.0, {"run": "clip"})],
    }
