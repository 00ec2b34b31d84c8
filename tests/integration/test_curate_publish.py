"""Curation you can trust: outputs overlapping an input are refused, an output is published
whole (on local disks and S3) whatever stops a run, and losing the timing actor loses no rows."""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
import ray
from typer.testing import CliRunner

from tests.s3server import S3Server
from weft import storage
from weft.cli import app
from weft.curate import pipeline, publish
from weft.curate.exact import ContentHash
from weft.curate.pipeline import curate
from weft.curate.report import Report
from weft.curate.runner import Clock, Tally, tell, timed
from weft.curate.spec import CurateSpec
from weft.demo.corpus import generate
from weft.specs import SpecError, parse_spec

pytestmark = pytest.mark.integration


def spec_for(raw: str, out: str, s3: S3Server | None = None, docs: bool = False) -> CurateSpec:
    """Pairs (and, with `docs`, documents); the model filters off, for speed."""
    inputs: list[dict[str, str]] = [{"uri": f"{raw}/pairs", "format": "webdataset"}]
    if docs:
        inputs.append({"uri": f"{raw}/docs", "format": "jsonl", "key_column": "id"})
    data: dict[str, Any] = {
        "name": "publish",
        "inputs": inputs,
        "output": out,
        "validate": {"max_image_pixels": 16_000_000, "min_image_side": 16},
        "batch_size": 32,
        "langid": {"enabled": False},
        "nsfw": {"enabled": False},
        "mlflow": {"enabled": False},
    }
    if s3:
        data["storage"] = s3.storage().model_dump()
    return parse_spec(CurateSpec, data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> tuple[str, Report]:
    """A small local corpus and the report of curating its pairs undisturbed."""
    root = tmp_path_factory.mktemp("publish")
    generate(str(root / "raw"), pairs=60, shards=3, documents=30)
    baseline = curate(spec_for(str(root / "raw"), str(root / "baseline")))
    assert not baseline.stages_partial
    return str(root / "raw"), baseline


def rows(loc: storage.Location) -> int:
    return pads.dataset(loc.path, filesystem=loc.fs, format="parquet").count_rows()


def seen(out: storage.Location) -> tuple[str, int, int]:
    """What a reader sees of a published output: its report's run, its data and removed rows;
    checked to agree with each other."""
    root = publish.published(out)
    report = Report.model_validate_json(storage.read_bytes(root.join("report.json")))
    kept, removed = rows(root.join("data")), rows(root.join("removed"))
    assert (kept, removed) == (report.counts.kept, report.counts.total("removed"))
    return report.run, kept, removed


def seen_locally(out: Path) -> tuple[str, int, int]:
    """The same through `<output>/data/` etc., as a tool that knows nothing of versions."""
    report = Report.model_validate_json((out / "report.json").read_bytes())
    kept = pads.dataset(out / "data", format="parquet").count_rows()
    removed = pads.dataset(out / "removed", format="parquet").count_rows()
    assert (kept, removed) == (report.counts.kept, report.counts.total("removed"))
    return report.run, kept, removed


def test_an_input_inside_the_output_is_refused_and_left_alone(
    tmp_path: Path, ray_session: None
) -> None:
    generate(str(tmp_path / "out" / "data"), pairs=8, shards=1, documents=4)
    before = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    spec = spec_for(str(tmp_path / "out" / "data"), str(tmp_path / "out"))
    with pytest.raises(SpecError, match="overlap") as err:
        curate(spec)
    assert f"output {tmp_path / 'out'} and input {tmp_path / 'out' / 'data' / 'pairs'}" in str(
        err.value
    )
    (tmp_path / "spec.yaml").write_text(json.dumps(spec.model_dump(mode="json", by_alias=True)))
    result = CliRunner().invoke(app, ["curate", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 2 and "overlap" in result.output
    assert sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file()) == before


def test_an_output_inside_an_input_is_refused_locally_and_on_s3(
    corpus: tuple[str, Report], s3_server: S3Server
) -> None:
    raw, _ = corpus
    with pytest.raises(
        SpecError, match=re.escape(f"output {raw}/pairs/curated and input {raw}/pairs ")
    ):
        curate(spec_for(raw, f"{raw}/pairs/curated"))
    assert not Path(raw, "pairs", "curated").exists()
    bucket = s3_server.new_bucket()
    storage.write_bytes(
        storage.resolve(f"s3://{bucket}/raw/pairs/a.tar", s3_server.storage()), b"x"
    )
    raw = f"s3://{bucket}/raw"
    with pytest.raises(SpecError, match=f"output {raw}/pairs/curated and input {raw}/pairs "):
        curate(spec_for(raw, f"{raw}/pairs/curated", s3_server))
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["raw/pairs/a.tar"]


def interrupt_on_the_second_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the write phase: once `data/` is written, while counting `removed/`."""
    count = pipeline._count_rows

    def count_then_interrupt(loc: storage.Location) -> int:
        if loc.uri.endswith("/removed"):
            raise KeyboardInterrupt
        return count(loc)

    monkeypatch.setattr(pipeline, "_count_rows", count_then_interrupt)


def test_ctrl_c_in_the_write_phase_leaves_the_previous_output_whole(
    corpus: tuple[str, Report],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw, _ = corpus
    out = storage.resolve(str(tmp_path / "out"))
    first = curate(spec_for(raw, out.uri))
    published = (first.run, first.counts.kept, first.counts.total("removed"))
    assert seen(out) == seen_locally(tmp_path / "out") == published

    with monkeypatch.context() as m:
        interrupt_on_the_second_part(m)
        with pytest.raises(KeyboardInterrupt):
            curate(spec_for(raw, out.uri, docs=True))
    assert seen(out) == seen_locally(tmp_path / "out") == published
    interrupted = publish.interrupted(out)
    assert interrupted is not None and interrupted.run != first.run

    with caplog.at_level(logging.WARNING, logger="weft.curate.publish"):
        rerun = curate(spec_for(raw, out.uri, docs=True))
    assert f"run {interrupted.run}" in caplog.text and "did not finish" in caplog.text
    assert rerun.counts.kept > first.counts.kept
    published = (rerun.run, rerun.counts.kept, rerun.counts.total("removed"))
    assert seen(out) == seen_locally(tmp_path / "out") == published
    assert storage.names(out.join("versions")) == [rerun.run]
    assert publish.interrupted(out) is None


def test_on_s3_the_pointer_is_written_last_and_a_crash_keeps_the_previous_output(
    s3_server: S3Server, ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, s3 = s3_server.new_bucket(), s3_server.storage()
    generate(f"s3://{bucket}/raw", pairs=40, shards=2, documents=20, storage_spec=s3)
    out = storage.resolve(f"s3://{bucket}/curated", s3)
    # an output written before versions: replaced by the first publication
    storage.write_bytes(out.join("data", "old.parquet"), b"old")
    storage.write_bytes(out.join("report.json"), b"{}")
    first = curate(spec_for(f"s3://{bucket}/raw", out.uri, s3_server))
    assert seen(out) == (first.run, first.counts.kept, first.counts.total("removed"))
    assert publish.published(out).uri == f"{out.uri}/versions/{first.run}"
    assert not storage.exists(out.join("data")) and not storage.exists(out.join("report.json"))

    write_atomic = storage.write_atomic

    def crash_at_the_commit(loc: storage.Location, data: bytes) -> None:
        if loc.uri.endswith(publish.PUBLISHED):
            raise KeyboardInterrupt
        write_atomic(loc, data)

    with monkeypatch.context() as m:
        m.setattr(storage, "write_atomic", crash_at_the_commit)
        with pytest.raises(KeyboardInterrupt):
            curate(spec_for(f"s3://{bucket}/raw", out.uri, s3_server, docs=True))
    assert seen(out) == (first.run, first.counts.kept, first.counts.total("removed"))
    interrupted = publish.interrupted(out)
    assert interrupted is not None
    assert storage.names(out.join("versions")) == sorted([first.run, interrupted.run])

    rerun = curate(spec_for(f"s3://{bucket}/raw", out.uri, s3_server, docs=True))
    assert rerun.counts.kept > first.counts.kept
    assert seen(out) == (rerun.run, rerun.counts.kept, rerun.counts.total("removed"))
    assert storage.names(out.join("versions")) == [rerun.run]
    assert publish.interrupted(out) is None


class HashThenKillClock(ContentHash):
    """`ContentHash` that kills the run's timing actor (for good) before hashing."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        for name in ray.util.list_named_actors():
            if name.startswith("weft-stage-clock-"):
                # not yet started (the run does not wait for it) or killed by another block:
                # a later block kills it
                with suppress(ValueError):
                    ray.kill(ray.get_actor(name))
        return super().__call__(batch)


def test_killing_the_timing_actor_mid_run_loses_no_rows(
    corpus: tuple[str, Report], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, baseline = corpus
    monkeypatch.setattr(pipeline, "ContentHash", HashThenKillClock)
    report = curate(spec_for(raw, str(tmp_path / "out")))
    assert report.counts == baseline.counts
    assert report.written == baseline.written
    assert report.stages_partial
    assert seen(storage.resolve(str(tmp_path / "out"))) == (
        report.run,
        baseline.counts.kept,
        baseline.counts.total("removed"),
    )


def test_a_tally_actor_that_restarts_or_dies_is_reported(ray_session: None) -> None:
    clock = Clock("weft-test-clock")
    ray.get(clock.actor.add.remote("s", 1, 0.5))
    tell(clock.actor, "repeated_keys", "f.jsonl", 2)
    assert clock.read() == Tally({"s": [1, 0.5]}, {"f.jsonl": 2}, True)
    ray.kill(clock.actor, no_restart=False)
    while clock.read().whole:  # the kill is asynchronous
        time.sleep(0.1)
    list(timed("s", lambda: pa.table({"x": [1, 2]}), clock.actor))
    assert clock.read() == Tally({"s": [2, pytest.approx(0, abs=1)]}, {}, False)
    ray.kill(clock.actor)
    assert [t.num_rows for t in timed("s", lambda: pa.table({"x": [1]}), clock.actor)] == [1]
    tell(clock.actor, "repeated_keys", "f.jsonl", 2)  # a dead clock loses the tally only
    assert clock.read() == Tally({}, {}, False)
