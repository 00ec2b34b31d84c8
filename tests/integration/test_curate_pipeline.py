"""`curate` end to end on Ray Data: S3 in → S3 out, the same spec on local folders, reruns."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pyarrow.dataset as pads
import pytest

from tests.s3server import S3Server
from weft.curate.pipeline import curate
from weft.curate.publish import published
from weft.curate.report import Report
from weft.curate.spec import CurateSpec
from weft.demo.corpus import FLAWS, Manifest, generate
from weft.specs import StorageSpec, parse_spec
from weft.storage import names, read_bytes, resolve

pytestmark = pytest.mark.integration
PAIRS, DOCS = 240, 120


def spec_for(
    raw: str, out: str, s3: S3Server | None = None, near_dedup: dict[str, str] | None = None
) -> CurateSpec:
    data: dict[str, object] = {
        "name": "it",
        "inputs": [
            {"uri": f"{raw}/pairs", "format": "webdataset"},
            {
                "uri": f"{raw}/parquet",
                "format": "parquet",
                "text_column": "caption",
                "key_column": "key",
            },
            {"uri": f"{raw}/docs", "format": "jsonl", "key_column": "id"},
        ],
        "output": out,
        "validate": {"max_image_pixels": 16_000_000, "min_image_side": 16, "max_text_chars": 8000},
        "batch_size": 64,
        "near_dedup": near_dedup or {},
    }
    if s3:
        data["storage"] = s3.storage().model_dump()
    return parse_spec(CurateSpec, data)


def check_against_manifest(
    report: Report, manifest: Manifest, storage: StorageSpec | None = None
) -> None:
    """Every planted flaw is quarantined with its reason, every exact duplicate removed, and
    the planted near duplicates found: all pairs, and documents at Jaccard >= 0.8 (none under
    0.5 removed)."""
    c = report.counts
    flaw_reasons = {reason: 1 for reason in FLAWS.values()}
    assert c.quarantined["validate"] == {k: v for k, v in flaw_reasons.items() if k != "bad_json"}
    assert c.quarantined["read"] == {"bad_json": 1, "file_truncated": 1, "file_bad_schema": 1}
    assert c.removed["exact_dedup"] == {"exact_duplicate": manifest.exact_duplicates}
    assert sorted(e.reason for e in report.file_errors) == ["file_bad_schema", "file_truncated"]
    out = published(resolve(report.output, storage))
    removed = pads.dataset(out.join("removed").path, filesystem=out.fs, format="parquet").to_table()
    near = {(r["source_uri"], r["key"]) for r in removed.to_pylist() if r["stage"] == "near_dedup"}
    found = {True: [], False: []}  # by "planted at Jaccard >= 0.8"
    for p in manifest.near_duplicates:
        a, b = (p["a_uri"], p["a_key"]), (p["b_uri"], p["b_key"])  # the demo's keys are unique
        if p["jaccard"] >= 0.5:
            found[p["jaccard"] >= 0.8].append(a in near or b in near)
        else:
            assert a not in near and b not in near, p
    assert sum(found[True]) / len(found[True]) >= 0.95
    assert c.removed["near_dedup"]["near_duplicate"] >= sum(found[True])


@pytest.fixture(scope="module")
def s3_run(s3_server: S3Server, ray_session: None) -> tuple[S3Server, str, CurateSpec, Report]:
    bucket = s3_server.new_bucket()
    manifest = generate(
        f"s3://{bucket}/raw",
        pairs=PAIRS,
        shards=3,
        documents=DOCS,
        storage_spec=s3_server.storage(),
    )
    spec = spec_for(f"s3://{bucket}/raw", f"s3://{bucket}/curated", s3_server)
    report = curate(spec)
    check_against_manifest(report, manifest, s3_server.storage())
    return s3_server, bucket, spec, report


def test_s3_input_is_curated_to_s3_output_and_adds_up(s3_run: tuple) -> None:
    s3, bucket, _, report = s3_run
    out = published(resolve(f"s3://{bucket}/curated", s3.storage()))
    assert out.uri == f"s3://{bucket}/curated/versions/{report.run}"
    data = pads.dataset(out.join("data").path, filesystem=out.fs, format="parquet").to_table()
    assert data.num_rows == report.counts.kept
    assert len(set(data["id"].to_pylist())) == data.num_rows
    pairs = data.filter(pads.field("image").is_valid())
    assert (
        len(set(zip(pairs["text_hash"].to_pylist(), pairs["image_hash"].to_pylist(), strict=True)))
        == pairs.num_rows
    )
    assert all(u.startswith(f"s3://{bucket}/raw/") for u in data["source_uri"].to_pylist())
    removed = pads.dataset(out.join("removed").path, filesystem=out.fs, format="parquet").to_table()
    # a duplicate points at the row kept in its place, which only a later filter may remove
    kept_or_filtered = set(data["id"].to_pylist()) | {
        r["id"] for r in removed.to_pylist() if r["stage"] in ("langid", "nsfw")
    }
    duplicates = removed.filter(pads.field("duplicate_of").is_valid())
    assert duplicates.num_rows > 0
    assert set(duplicates["duplicate_of"].to_pylist()) <= kept_or_filtered
    quarantine = pads.dataset(
        out.join("quarantine").path, filesystem=out.fs, format="parquet"
    ).to_table()
    assert quarantine.num_rows == report.counts.total("quarantined")
    assert all(quarantine["reason"].to_pylist()) and all(quarantine["detail"].to_pylist())
    saved = Report.model_validate_json(read_bytes(out.join("report.json")))
    saved.check()
    assert saved.content_hash == report.content_hash
    assert b"(checked)" in read_bytes(out.join("report.md"))


def test_rerun_gives_the_same_output_and_appends_nothing(s3_run: tuple) -> None:
    s3, bucket, spec, first = s3_run
    again = curate(spec)
    assert again.content_hash == first.content_hash
    assert again.written == first.written
    out = resolve(f"s3://{bucket}/curated", s3.storage())
    data = published(out).join("data")
    assert pads.dataset(data.path, filesystem=out.fs, format="parquet").count_rows() == (
        first.counts.kept
    )
    assert names(out.join("versions")) == [again.run]


def test_curation_run_is_logged_to_mlflow(s3_run: tuple) -> None:
    _, _, _, report = s3_run
    run = mlflow.get_run(report.mlflow_run_id)
    assert run.data.tags["weft.dataset.content_hash"] == report.content_hash
    assert run.data.metrics["rows.kept"] == report.counts.kept
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"report.json", "report.md", "spec.yaml"} <= artifacts


def test_the_same_spec_runs_on_local_folders_with_rensa_and_estimated_verification(
    tmp_path: Path, ray_session: None
) -> None:
    manifest = generate(str(tmp_path / "raw"), pairs=PAIRS, shards=3, documents=DOCS)
    spec = spec_for(
        str(tmp_path / "raw"),
        str(tmp_path / "curated"),
        near_dedup={"verify": "estimate", "engine": "rensa"},
    )
    report = curate(spec)
    check_against_manifest(report, manifest)
    assert (tmp_path / "curated" / "report.md").is_file()


def test_dry_run_writes_every_decision_and_leaves_the_output_alone(
    tmp_path: Path, ray_session: None
) -> None:
    generate(str(tmp_path / "raw"), pairs=60, shards=2, documents=40)
    spec = spec_for(str(tmp_path / "raw"), str(tmp_path / "curated"))
    report = curate(spec, dry_run=True)
    assert not (tmp_path / "curated" / "data").exists()
    decisions = pads.dataset(tmp_path / "curated" / "dry-run" / "decisions", format="parquet")
    table = decisions.to_table()
    assert table.num_rows == report.counts.input_rows == report.written["decisions"]
    assert "image" not in table.column_names
    kept = table.filter(pads.field("status") == "kept")
    assert kept.num_rows == report.counts.kept
    # the scores a data engineer tunes thresholds with are there
    assert kept.filter(pads.field("lang").is_valid()).num_rows == kept.num_rows
    assert kept.filter(pads.field("nsfw_score").is_valid()).num_rows > 0
    assert "(dry run)" in (tmp_path / "curated" / "dry-run" / "report.md").read_text()
