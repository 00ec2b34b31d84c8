"""Training faults (issue 11): workers the local Ray cannot run and data that cannot feed them
are refused before any worker starts, naming the field; a corrupted checkpoint is named and
the run resumes from the one before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.test_train import clip_spec, history
from weft.cli import app
from weft.specs import SpecError
from weft.train.run import train

pytestmark = pytest.mark.integration


# before the fix, Ray Train retried its 60 s worker-group start, or waited for a batch, forever:
# only a thread can stop that wait (by ending the session)
@pytest.mark.timeout(120, method="thread", func_only=True)
@pytest.mark.parametrize(
    ("workers", "message"),
    [
        (
            {"count": 3, "cpus": 1},
            "workers.count: 3 workers of 1 CPU each (workers.cpus, workers.gpu) do not fit the "
            "local Ray, which has 2 CPU: room for 2",
        ),
        (
            {"count": 1, "cpus": 0.5, "gpu": True},
            "workers.count: 1 workers of 0.5 CPU and 1 GPU each (workers.cpus, workers.gpu) do "
            "not fit the local Ray, which has 2 CPU and 0 GPU: room for 0",
        ),
        (
            {"count": 2, "cpus": 1},
            "workers.cpus: 2 workers of 1 CPU need 2 CPUs and Ray Data's tasks 0.25, more than "
            "the 2 the local Ray has; lower workers.cpus or workers.count",
        ),
    ],
)
def test_workers_the_local_ray_cannot_run_end_in_one_line_naming_the_field(
    workers: dict[str, Any], message: str, curated: tuple[str, str], tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    body = {
        "name": "too-big",
        "model": "clip-tiny",
        "data": {"uri": curated[0]},
        "strategy": {"name": "fsdp"},
        "workers": workers,
        "output": str(tmp_path / "runs"),
    }
    job.write_text(json.dumps(body))  # JSON is YAML
    result = CliRunner().invoke(app, ["train", str(job)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "runs" / "too-big").exists()  # no worker started, no run written


@pytest.mark.parametrize(
    ("data", "batch_size", "val_percent", "message"),
    [
        ("documents", 8, 10, r"data\.uri: .* holds 0 image-text pairs to train on"),
        (
            "pairs",
            80,
            10,
            r"holds 1\d\d image-text pairs to train on .* fewer than one batch for each worker: "
            r"workers\.count 2 x optim\.batch_size 80 = 160",
        ),
        ("pairs", 8, 0.001, r"data\.val_percent: no pair of .* falls in the held-out 0\.001%"),
    ],
)
def test_data_that_cannot_feed_the_workers_is_refused_before_they_start(
    data: str,
    batch_size: int,
    val_percent: float,
    message: str,
    curated: tuple[str, str],
    curated_documents: str,
    tmp_path: Path,
) -> None:
    uri = curated_documents if data == "documents" else curated[0]
    spec = clip_spec(uri, tmp_path, optim={"max_steps": 4, "batch_size": batch_size})
    spec = spec.model_copy(
        update={"data": spec.data.model_copy(update={"val_percent": val_percent})}
    )
    with pytest.raises(SpecError, match=message):
        train(spec)  # before the fix: three failed attempts and a traceback, or no evaluation
    assert not (tmp_path / "it-clip").exists()


def _checkpoints(run: Path) -> dict[int, Path]:
    """The run's checkpoint folders by step."""
    folders = [c for c in run.glob("checkpoint_*") if c.is_dir()]
    return {json.loads((c / "state.json").read_text())["step"]: c for c in folders}


@pytest.mark.parametrize(
    ("strategy", "weights"), [("ddp", "optimizer.pt"), ("fsdp", "__0_0.distcp")]
)
def test_a_corrupted_checkpoint_is_named_and_the_run_resumes_from_the_one_before(
    strategy: str,
    weights: str,
    curated: tuple[str, str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    spec = clip_spec(curated[0], tmp_path, name="it-corrupt", strategy={"name": strategy})
    train(spec)  # 4 steps, checkpoints at 2 and 4, both kept
    checkpoints = _checkpoints(tmp_path / "it-corrupt")
    assert set(checkpoints) == {2, 4}
    damaged = checkpoints[4] / weights
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])

    result = train(spec)  # before the fix: three failed attempts, naming no file
    assert result.metrics["step"] == 4 and result.run_id
    assert history(result.run_id, "val/loss") == [4]  # resumed at step 2, evaluated at 4
    output = capfd.readouterr()
    assert f"checkpoint {checkpoints[4]} does not load" in output.out + output.err
