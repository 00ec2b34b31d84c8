"""What a submitted job carries: its files (less what .gitignore and .rayignore leave out), the
code, its settings and credentials as env_vars only; never a credential in the entrypoint or
the metadata Ray shows. The submission itself: tests/integration/test_cluster_jobs.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from weft.cli.job_entry import submitter_folder
from weft.jobs import submit
from weft.specs import SpecError

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "c.yaml").write_text("name: My Corpus!\ninputs: []\noutput: out\n")
    (tmp_path / ".rayignore").write_text("data/\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(os.urandom(1 << 20))
    return tmp_path


def test_a_job_carries_settings_and_credentials_as_env_vars_alone(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("WEFT_USER", "dana")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.chdir(project)
    job = submit.prepare(Path("pipelines/c.yaml"))  # the folder it is run in goes with it
    assert job.kind == "curate" and job.output == "out" and job.user == "dana"
    assert job.id.startswith("weft-curate-my-corpus-")
    env = submit.runtime_env(job)
    assert env["working_dir"] == str(project)
    assert env["py_modules"] == [str(submit.package())]
    assert env["env_vars"]["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "AWS_SESSION_TOKEN" not in env["env_vars"]  # only what is set here
    context = json.loads(env["env_vars"]["MLFLOW_RUN_CONTEXT"])
    assert context == {"weft.job": job.id, "weft.user": "dana"}
    shown = submit.entrypoint(job) + json.dumps(submit.metadata(job))
    assert SECRET not in shown and "mlflow:5000" not in shown
    assert submit.entrypoint(job) == "python -m weft.cli.job_entry curate pipelines/c.yaml"


def test_the_uploads_are_measured_without_what_rayignore_leaves_out(project: Path) -> None:
    sizes = submit.sizes(submit.prepare(project / "pipelines" / "c.yaml", root=project))
    assert sizes["working_dir"] < 10_000  # the 1 MiB of random bytes stayed behind
    assert 100_000 < sizes["code"] < 5_000_000


def test_a_spec_outside_the_folder_or_missing_is_refused(project: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="outside"):
        submit.prepare(project / "pipelines" / "c.yaml", root=project / "data")
    with pytest.raises(SpecError, match="no such spec file"):
        submit.prepare(project / "nope.yaml", root=project)


def test_an_inline_spec_travels_alone_and_credentials_in_it_are_refused() -> None:
    job = submit.prepare_inline({"name": "x", "data": {"uri": "s3://b/c"}}, "train", "key:ci")
    assert [p.name for p in job.root.iterdir()] == ["spec.yaml"] and job.user == "key:ci"
    assert not job.local and submit.SUBMIT_DIR not in submit.runtime_env(job)["env_vars"]
    with pytest.raises(SpecError, match=r"spec\.storage: credentials are not accepted"):
        submit.prepare_inline({"storage": {"secret_access_key": SECRET}}, "train", "key:ci")


def test_the_job_runs_in_the_submitters_folder_only_where_it_sees_the_same_spec(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = submit.prepare(project / "pipelines" / "c.yaml", root=project)
    for name, value in job.env.items():
        monkeypatch.setenv(name, value)
    assert submitter_folder("pipelines/c.yaml") == project
    (project / "pipelines" / "c.yaml").write_text("name: changed\ninputs: []\n")  # a new file
    os.utime(project / "pipelines" / "c.yaml", ns=(1, 1))
    assert submitter_folder("pipelines/c.yaml") is None
    monkeypatch.setenv(submit.SUBMIT_DIR, "/nowhere")
    assert submitter_folder("pipelines/c.yaml") is None
