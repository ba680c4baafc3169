"""One small storage abstraction over an S3 bucket and a local directory standing in for it.

Handlers only ever say `Storage.for_bucket(name)`; whether that is S3 or `<root>/bucket/` is decided here,
once, from the environment (`TICKETFLOW_LOCAL_ROOT`, set by the local runtime). Keys are the same in both.

A key is a name, never a path to resolve or a pattern: the local bucket stores `a//b`, `a/./b`, `a/../b` and
`raw/*.csv` as distinct objects, as S3 does (the segments a filesystem would resolve are escaped, see
`LocalStorage.path`). Uploads under `raw/` keep every version, locally as on the versioned S3 bucket, so the
pipeline reads exactly the version an event names (`head`, `read_bytes`, `copy` take a `version_id`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

LOCAL_ROOT_ENV = "TICKETFLOW_LOCAL_ROOT"
# Where the local bucket keeps object versions, as on the versioned S3 bucket (only uploads are versioned:
# the pipeline's own outputs are written once under names of their own).
VERSIONED_PREFIXES = ("support_ticket/raw/",)


class UnsafeKeyError(ValueError):
    """A key the local bucket cannot store (empty, or holding a NUL character)."""


class ObjectMissingError(FileNotFoundError):
    """The object, or the version of it that an event names, does not exist (deleted, or never written)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True)
class ObjectHead:
    """One version of an object: `size` in bytes, `etag` as S3 gives it (quoted MD5 hex for a single PUT),
    `version_id` ("" when the object has no version: an unversioned prefix or bucket)."""

    key: str
    size: int
    etag: str
    version_id: str


class Storage(Protocol):
    bucket: str

    def uri(self, key: str) -> str: ...
    def key_of(self, uri: str) -> str: ...
    def read_bytes(self, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def create_exclusive(self, key: str, data: bytes) -> bool: ...
    def size(self, key: str) -> int: ...
    def head(self, key: str, version_id: str = "") -> ObjectHead: ...
    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def copy(self, src_key: str, dst_key: str, version_id: str = "", etag: str = "") -> None: ...
    def delete(self, key: str) -> None: ...


def for_bucket(bucket: str, s3_client: Any = None) -> Storage:
    root = os.environ.get(LOCAL_ROOT_ENV)
    if root:
        return LocalStorage(Path(root), bucket)
    return S3Storage(bucket, s3_client)


def check_key(key: str) -> str:
    if not key or "\x00" in key:
        raise UnsafeKeyError(f"refused key of {len(key)} characters: empty or holding a NUL character")
    return key


def encode_segment(segment: str) -> str:
    """A key segment as a file name that no filesystem resolves: "" (from `//` or a leading `/`), "." and ".."
    get a "%" in front, and so does a segment that already starts with "%", so `decode_segment` undoes it.
    Any other segment is its own file name (what a user sees in the local bucket directory)."""
    return "%" + segment if segment in ("", ".", "..") or segment.startswith("%") else segment


def decode_segment(name: str) -> str:
    return name[1:] if name.startswith("%") else name


# A concurrent delete removes the directories it empties (`LocalStorage.delete`): a writer that made the parent
# directory can find it gone before its file is in it, and tries again.
_WRITE_ATTEMPTS = 5

# Directories this close to the bucket root (`support_ticket/<area>/`) are never removed by a delete's tidy-up:
# Spark creates a run's directories under them, and its mkdirs does not retry when a parent vanishes.
_KEPT_DEPTH = 2


def _md5_etag(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f'"{digest.hexdigest()}"'


class LocalStorage:
    """The local bucket: `<root>/bucket/<key>` (one bucket per local home, whatever its name in events).
    Writes go through a temporary file and an atomic rename, so a reader never sees half a file. Objects
    under `VERSIONED_PREFIXES` also keep each version in `<root>/versions/<key>/<version id>` (a copy: it never
    changes), with its ETag beside it."""

    def __init__(self, root: Path, bucket: str) -> None:
        self.bucket = bucket
        self.base = (Path(root) / "bucket").resolve()
        self.versions = self.base.parent / "versions"

    def path(self, key: str) -> Path:
        """The file of `key`: each "/"-separated segment a file name of its own (`encode_segment`), so no
        key resolves to another key's file or outside the bucket. A final "/" (a prefix) stays a directory."""
        check_key(key)
        prefix = key.endswith("/")
        segments = (key[:-1] if prefix else key).split("/")
        return self.base.joinpath(*[encode_segment(s) for s in segments]) if segments != [""] else self.base

    def key_for_path(self, path: Path) -> str:
        """The key whose file is `path` (under the bucket directory)."""
        rel = Path(path).relative_to(self.base)
        return "/".join(decode_segment(part) for part in rel.parts)

    def uri(self, key: str) -> str:
        return str(self.path(key)) + ("/" if key.endswith("/") else "")

    def key_of(self, uri: str) -> str:
        key = self.key_for_path(Path(uri.removeprefix("file://").rstrip("/")))
        return key + "/" if uri.endswith("/") else key

    def _version_dir(self, key: str) -> Path:
        return self.versions.joinpath(*[encode_segment(s) for s in check_key(key).split("/")])

    def versioned(self, key: str) -> bool:
        return key.startswith(VERSIONED_PREFIXES)

    @staticmethod
    def _write_beside(target: Path, write: Callable[[Path], object], tmp_name: str = "") -> Path:
        """Write a temporary file in `target`'s directory (made if missing) with `write(tmp)` and return it, for
        an atomic rename onto `target`. Tried again when a concurrent delete removed the directory first.
        Raises FileNotFoundError after `_WRITE_ATTEMPTS` tries."""
        tmp = target.with_name(tmp_name or f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                # mkdir(exist_ok) itself raises FileExistsError when the folder it found vanishes meanwhile.
                target.parent.mkdir(parents=True, exist_ok=True)
                write(tmp)
                return tmp
            except (FileNotFoundError, FileExistsError):
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("not reached")

    def put_file(self, key: str, source: Path) -> ObjectHead:
        """Upload a file's bytes as a new version of `key` (an S3 PUT: complete or not at all); the source is
        only read."""
        target = self.path(key)
        tmp = self._write_beside(target, lambda t: shutil.copyfile(source, t), f".{target.name}.uploading")
        return self._commit(key, tmp, target)

    def snapshot(self, key: str) -> ObjectHead:
        """Record the object's current bytes as a version (for files put straight into the bucket directory,
        which `ticketflow watch` picks up), leaving the file itself untouched (its mtime is the watch's
        signature): the latest version when the file is unchanged since."""
        current = self.path(key)
        if not current.is_file():
            raise ObjectMissingError(f"no object at that key ({len(key)} characters)")
        latest = self._latest(key)
        if latest is not None:
            return latest
        before = current.stat()
        head = self._add_version(key, current)
        after = current.stat()
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise ObjectMissingError("the file changed while its version was recorded: try again once it settles")
        self._point_latest(key, head.version_id, current)
        return head

    def _add_version(self, key: str, source: Path) -> ObjectHead:
        """A copy of `source` as a new version of `key` (a copy, not a link: a version never changes, even when
        the bucket file is rewritten in place)."""
        version_id = f"{time.time_ns():x}.{uuid.uuid4().hex[:12]}"
        vdir = self._version_dir(key)
        vdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, vdir / f".{version_id}.tmp")
        etag = _md5_etag(vdir / f".{version_id}.tmp")
        (vdir / f".{version_id}.etag").write_text(etag)
        size = (vdir / f".{version_id}.tmp").stat().st_size
        os.replace(vdir / f".{version_id}.tmp", vdir / version_id)
        return ObjectHead(key, size, etag, version_id)

    def _point_latest(self, key: str, version_id: str, target: Path) -> None:
        st = target.stat()
        pointer = {"version_id": version_id, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        # Replaced whole: another process (a watch) may read it at any moment.
        tmp = self._version_dir(key) / f".latest.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(pointer))
        os.replace(tmp, self._version_dir(key) / ".latest")

    def _commit(self, key: str, tmp: Path, target: Path) -> ObjectHead:
        if not self.versioned(key):
            etag, size = _md5_etag(tmp), tmp.stat().st_size
            os.replace(tmp, target)
            return ObjectHead(key, size, etag, "")
        head = self._add_version(key, tmp)
        os.replace(tmp, target)
        self._point_latest(key, head.version_id, target)
        return head

    def _latest(self, key: str) -> ObjectHead | None:
        """The latest version, if the bucket file is still the one it recorded (same size and mtime)."""
        vdir = self._version_dir(key)
        pointer, current = vdir / ".latest", self.path(key)
        if not pointer.is_file() or not current.is_file():
            return None
        latest = json.loads(pointer.read_text())
        st = current.stat()
        if (st.st_size, st.st_mtime_ns) != (latest["size"], latest["mtime_ns"]):
            return None  # rewritten in place since: not a recorded version
        version_id = latest["version_id"]
        return ObjectHead(key, latest["size"], (vdir / f".{version_id}.etag").read_text(), version_id)

    def _file(self, key: str, version_id: str) -> Path:
        path = self._version_dir(key) / version_id if version_id else self.path(key)
        if "/" in version_id or version_id.startswith(".") or not path.is_file():
            raise ObjectMissingError(
                f"no {'version ' + repr(version_id) + ' of the ' if version_id else ''}object at that key "
                f"({len(key)} characters)"
            )
        return path

    def head(self, key: str, version_id: str = "") -> ObjectHead:
        """The object's size, ETag and version (the latest when `version_id` is empty); ObjectMissingError when
        the object or that version does not exist."""
        path = self._file(key, version_id)
        if version_id:
            return ObjectHead(key, path.stat().st_size,
                              (self._version_dir(key) / f".{version_id}.etag").read_text(), version_id)
        return self._latest(key) or ObjectHead(key, path.stat().st_size, _md5_etag(path), "")

    def read_bytes(self, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes:
        with self._file(key, version_id).open("rb") as fh:
            return fh.read(max_bytes) if max_bytes is not None else fh.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        tmp = self._write_beside(path, lambda t: t.write_bytes(data))
        if self.versioned(key):
            self._commit(key, tmp, path)
        else:
            os.replace(tmp, path)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def has_versions(self, key: str) -> bool:
        """The key was uploaded at some time (its versions are kept), whether or not it is deleted now."""
        vdir = self._version_dir(key)
        return vdir.is_dir() and any(not p.name.startswith(".") for p in vdir.iterdir())

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write `key` only if it does not exist (atomically: O_EXCL); False when it does."""
        path = self.path(key)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileNotFoundError, FileExistsError):  # a concurrent delete removed a folder: make it again
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                return False
            except FileNotFoundError:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        else:
            raise FileNotFoundError(f"could not make the folder of a {len(key)}-character key")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, as S3's ListObjectsV2 gives them: a prefix may end
        inside a name (`landing/tickets-` lists `landing/tickets-1a2b/...`)."""
        if prefix and not prefix.endswith("/") and not self.path(prefix).exists():
            parent = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
            return [o for o in self.list(parent) if o.key.startswith(prefix)]
        base = self.path(prefix.removesuffix("/")) if prefix.strip("/") else self.base
        if base.is_file():
            return [ObjectInfo(prefix, base.stat().st_size)]
        if not base.is_dir():
            return []
        found = []
        for p in sorted(base.rglob("*")):
            # Spark's .crc side files, _SUCCESS markers and in-flight temp files are not data objects.
            if p.is_file() and not p.name.startswith((".", "_")):
                found.append(ObjectInfo(self.key_for_path(p), p.stat().st_size))
        return found

    def copy(self, src_key: str, dst_key: str, version_id: str = "", etag: str = "") -> None:
        """Copy `src_key` (the given version, else the latest) to `dst_key`; with `etag`, ObjectMissingError
        unless the source still has exactly that ETag (S3's CopySourceIfMatch)."""
        source = self._file(src_key, version_id)
        if etag and self.head(src_key, version_id).etag != etag:
            raise ObjectMissingError(f"the source's ETag is no longer {etag}")
        target = self.path(dst_key)
        os.replace(self._write_beside(target, lambda t: shutil.copyfile(source, t)), target)

    def delete(self, key: str) -> None:
        """Remove the object; its versions stay (a delete marker on a versioned S3 bucket)."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        (self._version_dir(key) / ".latest").unlink(missing_ok=True)
        # Keep the tree tidy: drop directories emptied by the delete, up to `support_ticket/<area>/`. Another
        # thread may be writing into one: rmdir then refuses (not empty, or already gone) and the walk stops.
        parent = path.parent
        while len(parent.relative_to(self.base).parts) > _KEPT_DEPTH:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


class S3Storage:
    def __init__(self, bucket: str, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.client = client or boto3.client("s3")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise ValueError(f"{uri!r} is not in bucket {self.bucket!r}")
        return parsed.path.lstrip("/")

    def _missing(self, err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NoSuchVersion", "403", "412", "PreconditionFailed")

    def read_bytes(self, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes:
        extra: dict[str, str] = {"Range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        if version_id:
            extra["VersionId"] = version_id
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read())
        except self.client.exceptions.ClientError as err:
            if self._missing(err):
                raise ObjectMissingError(f"no such object or version ({len(key)}-character key)") from err
            raise

    def head(self, key: str, version_id: str = "") -> ObjectHead:
        extra = {"VersionId": version_id} if version_id else {}
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, **extra)
        except self.client.exceptions.ClientError as err:
            if self._missing(err):
                raise ObjectMissingError(f"no such object or version ({len(key)}-character key)") from err
            raise
        version = head.get("VersionId") or ""
        return ObjectHead(key, int(head["ContentLength"]), str(head["ETag"]), "" if version == "null" else version)

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except self.client.exceptions.ClientError:
            return False

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write `key` only if it does not exist (an S3 conditional write); False when it does."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except self.client.exceptions.ClientError as err:
            # 412: the key exists; 409: a concurrent conditional write to it is in progress.
            if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def list(self, prefix: str) -> list[ObjectInfo]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [ObjectInfo(o["Key"], int(o["Size"])) for o in page.get("Contents", [])]
        return [o for o in found if not o.key.rsplit("/", 1)[-1].startswith((".", "_"))]

    def copy(self, src_key: str, dst_key: str, version_id: str = "", etag: str = "") -> None:
        """Server-side copy of one version (multipart above 8 MiB, so any size); with `etag`, only while the
        source still has it (CopySourceIfMatch)."""
        source = {"Bucket": self.bucket, "Key": src_key, **({"VersionId": version_id} if version_id else {})}
        try:
            self.client.copy(source, self.bucket, dst_key, ExtraArgs={"CopySourceIfMatch": etag} if etag else None)
        except self.client.exceptions.ClientError as err:
            if self._missing(err):
                raise ObjectMissingError(f"no such object, version or ETag ({len(src_key)}-character key)") from err
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)
