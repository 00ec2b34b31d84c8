"""One place that turns a URI into a filesystem: `s3://bucket/prefix` or a local path.

S3 settings come from the spec's `storage` block, else the standard AWS environment
variables (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). Every stage reads and
writes through the `Location`s made here; errors become `StorageError`s naming the URI. The
secret key reaches pyarrow only here, unmasked from the spec's `SecretStr`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pydantic import SecretStr

from weft.specs import StorageSpec


class StorageError(RuntimeError):
    """Object storage refused or could not find something; the message names the URI."""

    @property
    def missing(self) -> bool:
        """Whether the thing is not there (rather than the store refusing or not answering)."""
        return isinstance(self.__cause__, FileNotFoundError)


@dataclass(frozen=True)
class Location:
    """A filesystem plus a path on it; `uri` is what people see in messages and reports."""

    fs: pafs.FileSystem
    path: str
    uri: str

    def join(self, *parts: str) -> Location:
        path = "/".join([self.path.rstrip("/"), *parts])
        uri = "/".join([self.uri.rstrip("/"), *parts])
        return Location(self.fs, path, uri)

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def s3_filesystem(spec: StorageSpec | None = None) -> pafs.S3FileSystem:
    """An S3 filesystem from the spec, falling back to the AWS environment variables."""
    spec = spec or StorageSpec()
    kwargs: dict[str, object] = {
        "region": spec.region or _env("AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
    }
    endpoint = spec.endpoint_url or _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    key = spec.access_key_id or _env("AWS_ACCESS_KEY_ID")
    secret = _secret(spec.secret_access_key) or _env("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        kwargs["access_key"] = key
        kwargs["secret_key"] = secret
        # the token belongs to the key: the spec's with the spec's key, else the environment's
        token = _secret(spec.session_token) if spec.access_key_id else _env("AWS_SESSION_TOKEN")
        if token:
            kwargs["session_token"] = token
    return pafs.S3FileSystem(**kwargs)


def resolve(uri: str, spec: StorageSpec | None = None) -> Location:
    """`s3://bucket/prefix` or a local path (relative to the working directory)."""
    if uri.startswith("s3://"):
        path = uri.removeprefix("s3://").strip("/")
        if not path:
            raise StorageError(f"{uri}: an S3 URI needs a bucket name")
        return Location(s3_filesystem(spec), path, "s3://" + path)
    if "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0]
        raise StorageError(f"{uri}: unsupported scheme '{scheme}' (use s3:// or a local path)")
    local = Path(uri.removeprefix("file://")).expanduser().resolve()
    return Location(pafs.LocalFileSystem(), str(local), str(local))


_HINTS = {
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "ACCESS_DENIED": "access denied: check the credentials (AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY or the spec's storage block)",
    "InvalidAccessKeyId": "the access key id is not known to the server: check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong: check AWS_SECRET_ACCESS_KEY",
    "NETWORK_CONNECTION": "cannot reach the S3 endpoint: check AWS_ENDPOINT_URL_S3",
}


def describe_error(err: BaseException) -> str:
    """A short, readable cause for a storage error."""
    text = str(err)
    for code, hint in _HINTS.items():
        if code in text:
            return f"{hint} ({text.splitlines()[0]})"
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def storage_errors(uri: str) -> Iterator[None]:
    """Turn filesystem errors raised inside the block into a `StorageError` naming `uri`."""
    try:
        yield
    except StorageError:
        raise
    except OSError as err:
        raise StorageError(f"{uri}: {describe_error(err)}") from err


def _check_bucket(loc: Location) -> None:
    bucket = loc.path.split("/", 1)[0]
    info = loc.fs.get_file_info(bucket)
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{loc.uri}: the bucket '{bucket}' does not exist")


def list_files(loc: Location, suffixes: tuple[str, ...]) -> list[Location]:
    """The files at `loc`, sorted: the file itself, every matching file under a folder, or a
    glob's matches (`*` and `?` in the last part). Raises if nothing matches."""
    with storage_errors(loc.uri):
        if loc.is_s3:
            _check_bucket(loc)
        if any(c in loc.path for c in "*?["):
            parent, pattern = loc.path.rsplit("/", 1)
            infos = loc.fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
            infos = [i for i in infos if fnmatch.fnmatch(i.base_name, pattern)]
        else:
            info = loc.fs.get_file_info(loc.path)
            if info.type == pafs.FileType.File:
                infos = [info]
            elif info.type == pafs.FileType.Directory:
                infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
            else:
                raise StorageError(f"{loc.uri}: no such file or folder")
    files = sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffixes)
    )
    if not files:
        raise StorageError(f"{loc.uri}: no input files ending in {', '.join(suffixes)}")
    root_uri = "s3://" if loc.is_s3 else ""
    return [Location(loc.fs, f, root_uri + f) for f in files]


def ensure_writable(loc: Location) -> None:
    """Fail early, naming the URI, when the output cannot be written (no bucket, no access)."""
    with storage_errors(loc.uri):
        if loc.is_s3:
            _check_bucket(loc)
        loc.fs.create_dir(loc.path, recursive=True)
        probe = loc.join(".weft-write-probe")
        with loc.fs.open_output_stream(probe.path) as out:
            out.write(b"ok")
        loc.fs.delete_file(probe.path)


def write_bytes(loc: Location, data: bytes) -> None:
    """Write a whole file, creating its folder where the filesystem has folders."""
    with storage_errors(loc.uri):
        if not loc.is_s3:
            loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
        with loc.fs.open_output_stream(loc.path) as out:
            out.write(data)


def read_bytes(loc: Location) -> bytes:
    with storage_errors(loc.uri), loc.fs.open_input_stream(loc.path) as f:
        return f.read()


class TooLarge(StorageError):
    """A file over the size its reader allows; nothing past the limit was read."""


def read_bounded(loc: Location, limit: int) -> bytes:
    """The whole file if it holds at most `limit` bytes, reading no more than `limit + 1`;
    else TooLarge."""
    with storage_errors(loc.uri), loc.fs.open_input_stream(loc.path) as f:
        data: bytes = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{loc.uri}: over {limit} bytes")
    return data


def copy_dir(src: Location, dst: Location) -> Location:
    """Copy the folder `src` into `dst` (either local or S3), replacing what `dst` held."""
    with storage_errors(src.uri):
        if src.fs.get_file_info(src.path).type != pafs.FileType.Directory:
            raise FileNotFoundError(f"{src.uri} is not a folder")
    delete(dst)
    with storage_errors(dst.uri):
        if not dst.is_s3:
            dst.fs.create_dir(dst.path, recursive=True)
        pafs.copy_files(src.path, dst.path, source_filesystem=src.fs, destination_filesystem=dst.fs)
    return dst


def overlap(a: Location, b: Location) -> bool:
    """Whether one location lies in the other, or they are one: compared by whole path parts
    (`/a/b` and `/a/bc` do not overlap); a glob stands for the folder it lists."""
    if a.is_s3 != b.is_s3:
        return False
    x, y = (_folder(loc.path) + "/" for loc in (a, b))
    return x.startswith(y) or y.startswith(x)


def within(inner: Location, outer: Location) -> bool:
    """Whether `inner` is `outer` or lies in it, compared by whole path parts (`/a/bc` is
    not in `/a/b`)."""
    if inner.is_s3 != outer.is_s3:
        return False
    return (inner.path.rstrip("/") + "/").startswith(outer.path.rstrip("/") + "/")


def _folder(path: str) -> str:
    """The path up to its first part with a wildcard, without a trailing slash."""
    parts = path.rstrip("/").split("/")
    glob = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
    return "/".join(parts[:glob])


def exists(loc: Location) -> bool:
    with storage_errors(loc.uri):
        return loc.fs.get_file_info(loc.path).type != pafs.FileType.NotFound


def names(loc: Location) -> list[str]:
    """The names of the files and folders in the folder `loc`, sorted; none if it is absent."""
    with storage_errors(loc.uri):
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, allow_not_found=True))
    return sorted(i.base_name for i in infos)


def delete(loc: Location) -> None:
    """Remove a file, or a folder and everything in it, if it exists."""
    with storage_errors(loc.uri):
        kind = loc.fs.get_file_info(loc.path).type
        if kind == pafs.FileType.Directory:
            loc.fs.delete_dir(loc.path)
        elif kind == pafs.FileType.File:
            loc.fs.delete_file(loc.path)


def write_atomic(loc: Location, data: bytes) -> None:
    """Write a whole file that readers see old or new, never in part: on S3 a PUT is that
    already; a local file is written beside and renamed over."""
    if loc.is_s3:
        write_bytes(loc, data)
        return
    tmp = Location(loc.fs, f"{loc.path}.{os.urandom(4).hex()}.tmp", loc.uri)
    write_bytes(tmp, data)
    with storage_errors(loc.uri):
        os.replace(tmp.path, loc.path)
