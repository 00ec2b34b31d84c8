"""Storage against a real S3 server on loopback: missing buckets and wrong keys are named."""

from __future__ import annotations

import pytest

from tests.s3server import S3Server
from weft.specs import StorageSpec
from weft.storage import StorageError, ensure_writable, list_files, read_bytes, resolve, write_bytes

pytestmark = pytest.mark.integration


def test_write_list_and_read_back(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    root = resolve(f"s3://{bucket}/in", s3_server.storage())
    write_bytes(root.join("a.tar"), b"abc")
    [found] = list_files(root, (".tar",))
    assert found.uri == f"s3://{bucket}/in/a.tar"
    assert read_bytes(found) == b"abc"


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    loc = resolve("s3://no-such-bucket/in", s3_server.storage())
    with pytest.raises(
        StorageError, match="s3://no-such-bucket/in: the bucket 'no-such-bucket' does not exist"
    ):
        list_files(loc, (".tar",))
    with pytest.raises(StorageError, match="does not exist"):
        ensure_writable(resolve("s3://no-such-bucket/out", s3_server.storage()))


def test_wrong_credentials_are_refused_with_a_hint(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    wrong = StorageSpec(
        endpoint_url=s3_server.endpoint,
        region="us-east-1",
        access_key_id="AKIAWRONGWRONGWRONG1",
        secret_access_key="nope",
    )
    with pytest.raises(StorageError) as err:
        list_files(resolve(f"s3://{bucket}/in", wrong), (".tar",))
    message = str(err.value)
    assert message.startswith(f"s3://{bucket}/in: ")
    assert "credentials" in message or "access key" in message


def test_wrong_secret_is_refused(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    wrong = StorageSpec(
        endpoint_url=s3_server.endpoint,
        region="us-east-1",
        access_key_id=s3_server.access_key,
        secret_access_key="not-the-secret",
    )
    with pytest.raises(StorageError, match=f"s3://{bucket}/out: "):
        ensure_writable(resolve(f"s3://{bucket}/out", wrong))


def test_environment_variables_configure_s3(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    ensure_writable(resolve(f"s3://{bucket}/out"))
