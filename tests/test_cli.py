"""The `weft` command: bad input ends in one clear line naming it and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.s3server import S3Server
from weft.cli import app

runner = CliRunner()


def write_spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(body)
    return path


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = ("curate", "demo", "demo-data", "train", "tune", "promote", "models", "index")
    for command in (*commands, "serve", "keys"):
        assert command in result.output


def curate_fails(tmp_path: Path, spec_text: str) -> str:
    """Run `weft curate` on a spec that must fail; return its output, whitespace collapsed."""
    result = runner.invoke(app, ["curate", str(write_spec(tmp_path, spec_text))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_spec_typo_prints_file_field_message_without_traceback(tmp_path: Path) -> None:
    output = curate_fails(
        tmp_path,
        "name: t\ninputs:\n  - uri: x\n    format: webdataset\noutput: out\nbatch_sise: 8\n",
    )
    assert f"error: {tmp_path}/job.yaml: batch_sise: unknown field (check the spelling)" in output


def test_missing_input_folder_is_named(tmp_path: Path) -> None:
    output = curate_fails(
        tmp_path,
        f"name: t\ninputs:\n  - uri: {tmp_path}/absent\n    format: jsonl\n"
        f"output: {tmp_path}/out\n",
    )
    assert f"{tmp_path}/absent: no such file or folder" in output


@pytest.mark.integration
def test_missing_bucket_is_named(s3_server: S3Server, tmp_path: Path) -> None:
    output = curate_fails(
        tmp_path,
        "name: t\ninputs:\n  - uri: s3://absent-bucket/raw\n    format: webdataset\n"
        f"output: s3://absent-bucket/out\nstorage:\n  endpoint_url: {s3_server.endpoint}\n"
        f"  access_key_id: {s3_server.access_key}\n  secret_access_key: {s3_server.secret_key}\n",
    )
    assert "s3://absent-bucket/raw: the bucket 'absent-bucket' does not exist" in output


@pytest.mark.integration
def test_wrong_credentials_are_named(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    output = curate_fails(
        tmp_path,
        f"name: t\ninputs:\n  - uri: s3://{bucket}/raw\n    format: webdataset\n"
        f"output: s3://{bucket}/out\n",
    )
    assert f"s3://{bucket}/raw: access denied: check the credentials" in output


@pytest.mark.integration
def test_curate_command_prints_the_checked_report(tmp_path: Path, ray_session: None) -> None:
    result = runner.invoke(
        app,
        ["demo-data", str(tmp_path / "raw"), "--pairs", "60", "--shards", "2", "--documents", "10"],
    )
    assert result.exit_code == 0, result.output
    spec = write_spec(
        tmp_path,
        f"name: cli\ninputs:\n  - uri: {tmp_path}/raw/pairs\n    format: webdataset\n"
        f"output: {tmp_path}/out\nvalidate:\n  max_image_pixels: 1000000\n"
        "mlflow:\n  enabled: false\n",
    )
    result = runner.invoke(app, ["curate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "(checked)" in result.output
    assert "file_truncated" in result.output
    assert (tmp_path / "out" / "report.json").is_file()


def test_promote_needs_exactly_one_source(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "model: m\ngate:\n  metrics:\n    val/loss: {better: lower}\n")
    for args in ([], ["--run", "a", "--sweep", "b"]):
        result = runner.invoke(app, ["promote", str(spec), *args])
        assert result.exit_code == 2 and "give exactly one of --run and --sweep" in result.output


def test_keys_add_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    from weft.serve import keys

    file = tmp_path / "keys.json"
    made = runner.invoke(app, ["keys", "add", "me", "--scopes", "search", "--file", str(file)])
    assert made.exit_code == 0
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("weft_") and key not in file.read_text()
    assert keys.find(keys.load(file), key) is not None
    bad = runner.invoke(app, ["keys", "add", "x", "--scopes", "root", "--file", str(file)])
    assert bad.exit_code == 2 and "scopes: root" in bad.output


def test_keys_add_with_a_role_takes_its_scopes(tmp_path: Path) -> None:
    from weft.serve import keys

    file = tmp_path / "keys.json"
    made = runner.invoke(app, ["keys", "add", "ops", "--role", "operator", "--file", str(file)])
    assert made.exit_code == 0, made.output
    (entry,) = keys.load(file)
    assert entry.role == "operator" and entry.scopes == list(keys.ROLES["operator"])
    assert entry.allows("promote") and not entry.allows("train")
    listed = runner.invoke(app, ["keys", "list", "--file", str(file)])
    assert "operator" in listed.stdout
    both = ["keys", "add", "x", "--role", "viewer", "--scopes", "search", "--file", str(file)]
    assert "give a role or scopes, not both" in runner.invoke(app, both).output
    unknown = runner.invoke(app, ["keys", "add", "x", "--role", "root", "--file", str(file)])
    assert unknown.exit_code == 2 and "role: root: use admin, researcher" in unknown.output


def test_keys_list_shows_names_and_scopes_and_revoke_removes_one(tmp_path: Path) -> None:
    from weft.serve import keys

    file = tmp_path / "keys.json"
    kept = keys.add(file, "app", ["search"], 60)
    gone = keys.add(file, "ops", ["admin"], 30)
    listed = runner.invoke(app, ["keys", "list", "--file", str(file)])
    assert listed.exit_code == 0 and "app" in listed.stdout and "ops" in listed.stdout
    assert keys.digest(kept) not in listed.stdout and kept not in listed.stdout
    revoked = runner.invoke(app, ["keys", "revoke", "ops", "--file", str(file)])
    assert revoked.exit_code == 0
    entries = keys.load(file)
    assert keys.find(entries, gone) is None and keys.find(entries, kept) is not None
    assert file.stat().st_mode & 0o777 == 0o600  # replaced whole, still its owner's only
    again = runner.invoke(app, ["keys", "revoke", "ops", "--file", str(file)])
    assert again.exit_code == 2 and "no key named ops" in again.output


def test_quality_stops_with_exit_1_when_a_model_is_not_promoted_and_2_on_a_bad_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weft.quality import flow
    from weft.specs import SpecError

    def not_promoted(*args: object) -> dict[str, float]:
        raise flow.NotPromoted("jobs/emoji-clip.yaml: its model was not promoted")

    monkeypatch.setattr(flow, "run", not_promoted)
    result = runner.invoke(app, ["quality"])
    assert result.exit_code == 1
    assert "error: jobs/emoji-clip.yaml: its model was not promoted" in result.output

    def bad_readme(*args: object) -> dict[str, float]:
        raise SpecError("--readme nowhere.md: no such file")

    monkeypatch.setattr(flow, "run", bad_readme)
    result = runner.invoke(app, ["quality", "--readme", "nowhere.md"])
    assert result.exit_code == 2 and "error: --readme nowhere.md: no such file" in result.output

    monkeypatch.setattr(flow, "run", lambda *args: {"corpus": 60.0, "index": 30.0})
    result = runner.invoke(app, ["quality", "--readme", str(tmp_path / "q.md")])
    assert result.exit_code == 0
    assert "time: corpus 60 s, index 30 s; in all 1.5 min" in result.output


def test_demo_hands_its_options_to_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    from weft.demo import flow

    given: list[tuple[object, ...]] = []
    monkeypatch.setattr(flow, "run", lambda *args: given.append(args[1:]))
    result = runner.invoke(app, ["demo", "--raw", "r", "--pairs", "9", "--train", "a.yaml"])
    assert result.exit_code == 0, result.output
    assert given == [(Path("pipelines/demo.yaml"), "r", 9, [Path("a.yaml")])]
