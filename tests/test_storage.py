"""Storage on local paths: listing, globs, and errors that name the URI; S3 credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from weft.specs import StorageSpec
from weft.storage import (
    StorageError,
    TooLarge,
    list_files,
    read_bounded,
    resolve,
    s3_filesystem,
    within,
)


def test_local_listing_is_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    for name in ("b/2.tar", "a.tar", "b/1.tar", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [
        Path(f.uri).relative_to(tmp_path).as_posix()
        for f in list_files(resolve(str(tmp_path)), (".tar",))
    ]
    assert found == ["a.tar", "b/1.tar", "b/2.tar"]


def test_glob_matches_the_last_part(tmp_path: Path) -> None:
    for name in ("shard-1.tar", "shard-2.tar", "other.tar"):
        (tmp_path / name).write_bytes(b"x")
    found = list_files(resolve(f"{tmp_path}/shard-*.tar"), (".tar",))
    assert [Path(f.path).name for f in found] == ["shard-1.tar", "shard-2.tar"]


def test_missing_input_and_empty_folder_name_the_uri(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=f"{tmp_path}/nope: no such file or folder"):
        list_files(resolve(str(tmp_path / "nope")), (".tar",))
    with pytest.raises(StorageError, match=r"no input files ending in \.tar"):
        list_files(resolve(str(tmp_path)), (".tar",))


def test_unsupported_scheme_and_bucketless_uri_are_refused() -> None:
    with pytest.raises(StorageError, match="unsupported scheme 'gs'"):
        resolve("gs://bucket/x")
    with pytest.raises(StorageError, match="needs a bucket name"):
        resolve("s3://")


def test_s3_uri_keeps_bucket_and_prefix() -> None:
    loc = resolve("s3://bucket/some/prefix/")
    assert (loc.path, loc.uri, loc.is_s3) == ("bucket/some/prefix", "s3://bucket/some/prefix", True)
    assert loc.join("data").uri == "s3://bucket/some/prefix/data"


def settings(fs: pafs.S3FileSystem) -> dict[str, Any]:
    """What the filesystem was made with (what it pickles, for Ray workers)."""
    return dict(fs.__reduce__()[1][0])


def test_s3_filesystem_gets_the_spec_secrets_unmasked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")  # not the spec key's token
    spec = StorageSpec(access_key_id="AKID", secret_access_key="the-secret")
    assert "the-secret" not in repr(spec)
    s = settings(s3_filesystem(spec))
    assert (s["access_key"], s["secret_key"], s["session_token"]) == ("AKID", "the-secret", "")
    temporary = StorageSpec(access_key_id="ASIA", secret_access_key="s", session_token="spec-token")
    assert settings(s3_filesystem(temporary))["session_token"] == "spec-token"


def test_s3_credentials_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    s = settings(s3_filesystem(StorageSpec(region="eu-west-1")))
    assert (s["access_key"], s["secret_key"], s["session_token"]) == (
        "ENVKEY",
        "env-secret",
        "env-token",
    )


def test_within_compares_whole_path_parts(tmp_path: Path) -> None:
    demo = resolve(str(tmp_path / "demo"))
    assert within(resolve(str(tmp_path / "demo" / "a.png")), demo)
    assert within(demo, demo)
    assert not within(resolve(str(tmp_path / "demo-x" / "a.png")), demo)
    assert not within(resolve(str(tmp_path)), demo)
    assert not within(resolve("s3://bucket/demo/a.png"), demo)


def test_a_bounded_read_stops_past_its_limit(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"x" * 10)
    (tmp_path / "big").write_bytes(b"x" * 11)
    assert read_bounded(resolve(str(tmp_path / "small")), 10) == b"x" * 10
    with pytest.raises(TooLarge, match="over 10 bytes"):
        read_bounded(resolve(str(tmp_path / "big")), 10)
