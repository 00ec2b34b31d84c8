"""`curate` end to end over what readers get wrong: keys that repeat or are empty, and an object
store that goes away between listing the inputs and reading them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from typer.testing import CliRunner

from tests.s3server import S3Server, running_s3_server
from weft.cli import app
from weft.curate import pipeline
from weft.curate.spec import CurateSpec
from weft.specs import parse_spec

pytestmark = pytest.mark.integration
QUICK = {
    "near_dedup": {"enabled": False},
    "langid": {"enabled": False},
    "nsfw": {"enabled": False},
    "mlflow": {"enabled": False},
}


def test_repeated_and_empty_keys_neither_share_ids_nor_break_the_run(
    tmp_path: Path, ray_session: None
) -> None:
    docs = tmp_path / "raw" / "docs.jsonl"
    docs.parent.mkdir()
    lines = [
        {"id": "k", "text": "the first text of key k"},
        {"id": "k", "text": "a text found nowhere else"},
        {"id": "j", "text": "the first text of key k"},  # an exact copy of the first
        {"id": 7, "text": "seven as a number"},
        {"id": "7", "text": "seven as a string"},
        {"id": None, "text": "a null key"},
        {"id": "", "text": "an empty key"},
    ]
    docs.write_text("".join(json.dumps(d) + "\n" for d in lines))
    spec = parse_spec(
        CurateSpec,
        {
            "name": "keys",
            "inputs": [{"uri": str(docs.parent), "format": "jsonl", "key_column": "id"}],
            "output": str(tmp_path / "curated"),
            **QUICK,
        },
    )
    report = pipeline.curate(spec)
    c = report.counts
    assert (c.input_rows, c.kept, c.removed) == (7, 6, {"exact_dedup": {"exact_duplicate": 1}})
    assert report.file_errors == []
    assert report.repeated_keys == {str(docs): 2}
    data = pads.dataset(tmp_path / "curated" / "data", format="parquet").to_table()
    assert "a text found nowhere else" in data["text"].to_pylist()
    assert sorted(data["key"].to_pylist()) == sorted(["", "000000006", "7", "7", "j", "k"])
    assert len(set(data["id"].to_pylist())) == data.num_rows
    markdown = (tmp_path / "curated" / "report.md").read_text()
    assert f"| `{docs}` | 2 |" in markdown


@pytest.fixture
def doomed_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Server, str]]:
    """A server of its own with three JSONL files, stopped as soon as the inputs are listed."""
    with running_s3_server() as server:
        bucket = server.new_bucket()
        for i in range(3):
            body = "".join(json.dumps({"text": f"doc {i} {j}"}) + "\n" for j in range(10))
            server.client().put_object(Bucket=bucket, Key=f"raw/docs-{i}.jsonl", Body=body)
        listed = pipeline.list_inputs

        def list_then_stop(spec: CurateSpec) -> list[pipeline.InputFile]:
            files = listed(spec)
            server.stop()
            return files

        monkeypatch.setattr(pipeline, "list_inputs", list_then_stop)
        yield server, bucket


def spec_yaml(tmp_path: Path, server: S3Server, bucket: str, allow_missing: bool) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(
        f"name: gone\ninputs:\n  - uri: s3://{bucket}/raw\n    format: jsonl\n"
        + ("    allow_missing: true\n" if allow_missing else "")
        + f"output: {tmp_path}/curated\n"
        f"storage:\n  endpoint_url: {server.endpoint}\n  access_key_id: {server.access_key}\n"
        f"  secret_access_key: {server.secret_key}\n"
        + "".join(f"{k}:\n  enabled: false\n" for k in QUICK)
    )
    return path


def test_the_store_going_away_fails_the_run_in_one_line_naming_the_file(
    tmp_path: Path, doomed_s3: tuple[S3Server, str], ray_session: None
) -> None:
    server, bucket = doomed_s3
    result = CliRunner().invoke(app, ["curate", str(spec_yaml(tmp_path, server, bucket, False))])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert f"error: s3://{bucket}/raw/docs-" in errors[0]
    assert "cannot reach the S3 endpoint" in errors[0]
    assert "accounting" not in result.output


def test_with_allow_missing_the_unread_files_are_reported(
    tmp_path: Path, doomed_s3: tuple[S3Server, str], ray_session: None
) -> None:
    server, bucket = doomed_s3
    result = CliRunner().invoke(app, ["curate", str(spec_yaml(tmp_path, server, bucket, True))])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "curated" / "report.json").read_text())
    assert sorted((e["uri"], e["reason"]) for e in report["file_errors"]) == [
        (f"s3://{bucket}/raw/docs-{i}.jsonl", "file_unavailable") for i in range(3)
    ]
    assert report["counts"]["input_rows"] == 3
    assert report["counts"]["quarantined"] == {"read": {"file_unavailable": 3}}
