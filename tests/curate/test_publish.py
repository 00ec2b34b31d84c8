"""Publishing a curation output whole, and refusing outputs that overlap an input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from weft import storage
from weft.curate import publish
from weft.curate.pipeline import check_locations
from weft.curate.spec import CurateSpec
from weft.specs import SpecError, parse_spec

NAMES = ["data", "removed", "report.json"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("/a/b", "/a/b", True),
        ("/a/b", "/a/b/c", True),
        ("/a/b/c", "/a/b", True),
        ("/a/b", "/a/bc", False),
        ("/a/bc", "/a/b", False),
        ("/a/b/", "/a/b/c", True),
        ("/", "/a", True),
        ("/a/*.tar", "/a/out", True),
        ("/a/b/*.tar", "/a/c", False),
        ("s3://bucket/raw", "s3://bucket/raw/curated", True),
        ("s3://bucket/raw/curated", "s3://bucket/raw", True),
        ("s3://bucket/raw", "s3://bucket/raw2", False),
        ("s3://bucket", "s3://bucket/curated", True),
        ("s3://one/raw", "s3://two/raw", False),
        ("s3://bucket/a/b", "/bucket/a/b", False),
    ],
)
def test_locations_overlap_by_whole_path_parts(a: str, b: str, expected: bool) -> None:
    assert storage.overlap(storage.resolve(a), storage.resolve(b)) is expected


def test_a_relative_or_symlinked_path_is_compared_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out" / "raw").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "out" / "raw")
    monkeypatch.chdir(tmp_path)
    assert storage.overlap(storage.resolve("link"), storage.resolve(str(tmp_path / "out")))
    assert storage.overlap(storage.resolve("./out/../out"), storage.resolve(str(tmp_path)))


def spec(inputs: list[str], output: str) -> CurateSpec:
    return parse_spec(
        CurateSpec,
        {"name": "t", "inputs": [{"uri": u, "format": "jsonl"} for u in inputs], "output": output},
    )


@pytest.mark.parametrize(
    ("inputs", "output"),
    [
        (["{tmp}/other", "{tmp}/out/data"], "{tmp}/out"),  # the input lies under the output
        (["{tmp}/raw"], "{tmp}/raw/curated"),  # the output lies under an input
        (["s3://bucket/raw/*.jsonl"], "s3://bucket/raw/curated"),
    ],
)
def test_an_output_overlapping_an_input_is_refused_naming_both(
    tmp_path: Path, inputs: list[str], output: str
) -> None:
    inputs = [u.format(tmp=tmp_path) for u in inputs]
    output = output.format(tmp=tmp_path)
    with pytest.raises(SpecError) as err:
        check_locations(spec(inputs, output))
    assert output in str(err.value) and inputs[-1] in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing read or written


def test_outputs_beside_their_inputs_are_accepted(tmp_path: Path) -> None:
    check_locations(spec([f"{tmp_path}/raw", f"{tmp_path}/raw2/x"], f"{tmp_path}/raw2y"))
    check_locations(spec(["s3://bucket/raw"], "s3://bucket/raw-curated"))


def crash(*_: object) -> None:
    """Ctrl-C, where a test puts it."""
    raise KeyboardInterrupt


def crashed_commit(
    out: storage.Location, monkeypatch: pytest.MonkeyPatch, target: object, name: str, tag: str
) -> publish.Run:
    """A first version published, then a run tagged `tag` interrupted inside its commit,
    at `target.name`."""
    first = publish.begin(out)
    write_version(first, "first")
    publish.commit(first, NAMES)
    run = publish.begin(out)
    write_version(run, tag)
    with monkeypatch.context() as m:
        m.setattr(target, name, crash)
        with pytest.raises(KeyboardInterrupt):
            publish.commit(run, NAMES)
    return run


def write_version(run: publish.Run, tag: str) -> None:
    """What a run writes: a Parquet-like file per part and the report, tagged."""
    for part in ("data", "removed"):
        storage.write_bytes(run.version.join(part, f"{tag}.parquet"), tag.encode())
    storage.write_bytes(run.version.join("report.json"), json.dumps({"tag": tag}).encode())


def read_published(out: storage.Location) -> str:
    """The tag of the published output, checked to be the same in every part."""
    root = publish.published(out)
    tags = {
        json.loads(storage.read_bytes(root.join("report.json")))["tag"],
        *(
            Path(f.path).stem
            for part in ("data", "removed")
            for f in storage.list_files(root.join(part), (".parquet",))
        ),
    }
    assert len(tags) == 1, tags
    return tags.pop()


def read_local_view(out: Path) -> str:
    """The same through the plain folders a tool that knows nothing of versions reads."""
    tags = {
        json.loads((out / "report.json").read_text())["tag"],
        *(p.stem for part in ("data", "removed") for p in (out / part).iterdir()),
    }
    assert len(tags) == 1, tags
    return tags.pop()


def test_a_run_is_published_whole_and_replaces_the_previous_version(tmp_path: Path) -> None:
    out = storage.resolve(str(tmp_path / "out"))
    first = publish.begin(out)
    assert publish.interrupted(out).run == first.id
    write_version(first, "first")
    publish.commit(first, NAMES)
    assert read_published(out) == read_local_view(tmp_path / "out") == "first"
    assert publish.interrupted(out) is None

    second = publish.begin(out)
    write_version(second, "second")
    assert read_published(out) == read_local_view(tmp_path / "out") == "first"
    publish.commit(second, NAMES)
    assert read_published(out) == read_local_view(tmp_path / "out") == "second"
    assert storage.names(out.join("versions")) == [second.id]
    assert (tmp_path / "out" / "data").is_symlink()


def test_a_crash_before_the_commit_leaves_the_previous_output_and_a_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = storage.resolve(str(tmp_path / "out"))
    crashed = crashed_commit(out, monkeypatch, storage, "write_atomic", "crashed")
    assert read_published(out) == read_local_view(tmp_path / "out") == "first"
    assert publish.interrupted(out).run == crashed.id

    with caplog.at_level(logging.WARNING, logger="weft.curate.publish"):
        rerun = publish.begin(out)
    assert f"run {crashed.id}" in caplog.text and "did not finish" in caplog.text
    write_version(rerun, "rerun")
    publish.commit(rerun, NAMES)
    assert read_published(out) == read_local_view(tmp_path / "out") == "rerun"
    assert storage.names(out.join("versions")) == [rerun.id]
    assert publish.interrupted(out) is None


def test_a_crash_after_the_commit_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = storage.resolve(str(tmp_path / "out"))
    crashed_commit(out, monkeypatch, publish, "_link", "second")
    # committed: readers of `_PUBLISHED` see the new output, the plain folders the old one
    assert read_published(out) == "second"
    assert read_local_view(tmp_path / "out") == "first"
    rerun = publish.begin(out)
    write_version(rerun, "rerun")
    publish.commit(rerun, NAMES)
    assert read_published(out) == read_local_view(tmp_path / "out") == "rerun"
    assert storage.names(out.join("versions")) == [rerun.id]


def test_an_output_written_before_versions_is_read_as_is_then_replaced(tmp_path: Path) -> None:
    legacy = tmp_path / "out"
    (legacy / "data").mkdir(parents=True)
    (legacy / "removed").mkdir()
    (legacy / "data" / "legacy.parquet").write_bytes(b"x")
    (legacy / "removed" / "legacy.parquet").write_bytes(b"x")
    (legacy / "report.json").write_text(json.dumps({"tag": "legacy"}))
    out = storage.resolve(str(legacy))
    assert publish.published(out) == out
    assert read_published(out) == "legacy"
    run = publish.begin(out)
    write_version(run, "new")
    publish.commit(run, NAMES)
    assert read_published(out) == read_local_view(legacy) == "new"


def test_a_damaged_stamp_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "_PUBLISHED").write_text('{"run": "../../etc", "at": "2025-01-01T00:00:00Z"}')
    with pytest.raises(storage.StorageError, match=f"{tmp_path}/_PUBLISHED: not a Weft run"):
        publish.published(storage.resolve(str(tmp_path)))
