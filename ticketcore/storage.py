"""One small storage abstraction over an S3 bucket and a local directory standing in for it.

Handlers only ever say `Storage.for_bucket(name)`; whether that is S3 or `<root>/bucket/` is decided here,
once, from the environment (`TICKETFLOW_LOCAL_ROOT`, set by the local runtime). Keys are the same in both.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

LOCAL_ROOT_ENV = "TICKETFLOW_LOCAL_ROOT"


class UnsafeKeyError(ValueError):
    """A key that would escape the local bucket's directory (`..`, absolute paths)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage(Protocol):
    bucket: str

    def uri(self, key: str) -> str: ...
    def key_of(self, uri: str) -> str: ...
    def read_bytes(self, key: str, max_bytes: int | None = None) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def create_exclusive(self, key: str, data: bytes) -> bool: ...
    def size(self, key: str) -> int: ...
    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def copy(self, src_key: str, dst_key: str) -> None: ...
    def delete(self, key: str) -> None: ...


def for_bucket(bucket: str, s3_client: Any = None) -> Storage:
    root = os.environ.get(LOCAL_ROOT_ENV)
    if root:
        return LocalStorage(Path(root), bucket)
    return S3Storage(bucket, s3_client)


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or ".." in parts or "\\" in key or "\x00" in key:
        raise UnsafeKeyError(f"refused key {key!r}: it would escape the bucket root (.., absolute or NUL)")
    return key


class LocalStorage:
    """The local bucket: `<root>/bucket/<key>` (one bucket per local home, whatever its name in events).
    Writes go through a temporary file and an atomic rename, so a reader never sees half a file."""

    def __init__(self, root: Path, bucket: str) -> None:
        self.bucket = bucket
        self.base = (Path(root) / "bucket").resolve()

    def path(self, key: str) -> Path:
        path = (self.base / check_key(key)).resolve()
        if self.base not in path.parents and path != self.base:
            raise UnsafeKeyError(f"refused key {key!r}: resolves outside {self.base}")
        return path

    def uri(self, key: str) -> str:
        return str(self.path(key)) + ("/" if key.endswith("/") else "")

    def key_of(self, uri: str) -> str:
        path = Path(uri.removeprefix("file://"))
        rel = path.resolve().relative_to(self.base).as_posix()
        return rel + "/" if uri.endswith("/") else rel

    def read_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        with self.path(key).open("rb") as fh:
            return fh.read(max_bytes) if max_bytes is not None else fh.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write `key` only if it does not exist (atomically: O_EXCL); False when it does."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.base
        if base.is_file():
            return [ObjectInfo(prefix, base.stat().st_size)]
        if not base.is_dir():
            return []
        found = []
        for p in sorted(base.rglob("*")):
            # Spark's .crc side files, _SUCCESS markers and in-flight temp files are not data objects.
            if p.is_file() and not p.name.startswith((".", "_")):
                found.append(ObjectInfo(p.relative_to(self.base).as_posix(), p.stat().st_size))
        return found

    def copy(self, src_key: str, dst_key: str) -> None:
        self.write_bytes(dst_key, self.read_bytes(src_key))

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # Keep the tree tidy: drop directories emptied by the delete, up to the bucket root.
        parent = path.parent
        while parent != self.base and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
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

    def read_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        extra = {"Range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read())

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

    def copy(self, src_key: str, dst_key: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=dst_key, CopySource={"Bucket": self.bucket, "Key": src_key}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)
