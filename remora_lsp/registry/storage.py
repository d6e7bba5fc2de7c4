"""Where a registry keeps its objects: a local folder or an S3 bucket, behind one protocol.

Keys are ``/``-separated relative paths built only by the registry from validated names
(``packs/<name>/<version>.json``, ``blobs/<sha256>.remorapack``, ``tokens/<hash>.json``);
:func:`check_key` refuses anything else, so no key can escape the storage root.

Writes are atomic: :meth:`Storage.put_file` publishes a file that is already complete on local
disk (the server has received, hashed and checked the whole upload first). The local backend
writes a temporary file in ``.tmp/``, ``fsync``\\ s it and renames (or hard-links, for a
create-only write) it into place; S3 receives the complete object in one ``PutObject``, with
``If-None-Match: *`` for a create-only write. A reader therefore sees either nothing or the
whole object, and a create-only write has exactly one winner.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from remora_lsp.registry.errors import RegistryError

__all__ = [
    "KEY_RE",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "check_key",
    "open_storage",
]

KEY_RE = re.compile(r"^[a-z0-9_][a-z0-9_.@+-]*(/[a-z0-9_][a-z0-9_.@+-]*)*$", re.IGNORECASE)
_CHUNK = 256 * 1024
_TMP = ".tmp"


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise RegistryError."""
    if len(key) > 512 or not KEY_RE.match(key) or any(p in {".", ".."} for p in key.split("/")):
        raise RegistryError(f"refusing storage key {key!r}")
    return key


class Storage(Protocol):
    """An object store holding the registry's packs, metadata and hashed tokens."""

    url: str

    def put_file(self, key: str, path: Path, *, create_only: bool = False) -> bool:
        """Store the complete file ``path`` under ``key``, atomically.

        With ``create_only``, store it only if ``key`` does not exist yet and return False
        (changing nothing) if it does; exactly one of several concurrent creators wins.
        """

    def put_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """Like :meth:`put_file` for a small object held in memory."""

    def get_bytes(self, key: str) -> bytes | None:
        """A small object's bytes, or None if it does not exist."""

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if it does not exist."""

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive; None = to the end) of an object."""

    def list(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix`` (sorted)."""

    def exists(self, key: str) -> bool:
        """True if ``key`` exists."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if it is absent)."""


# ---------------------------------------------------------------------------------------------
# Local folder


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalStorage:
    """Objects as files under a root folder; temporary files live in ``<root>/.tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = f"file://{self.root}"
        (self.root / _TMP).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _tmp(self) -> Path:
        return self.root / _TMP / f"{os.getpid()}-{secrets.token_hex(8)}"

    def _publish(self, key: str, tmp: Path, create_only: bool) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if create_only:
                try:
                    os.link(tmp, target)  # fails if target exists: an atomic create-only
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, target)
        finally:
            with suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(target.parent)
        return True

    def put_file(self, key: str, path: Path, *, create_only: bool = False) -> bool:
        self._path(key)  # validate before copying anything
        tmp = self._tmp()
        try:
            with path.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            with suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return self._publish(key, tmp, create_only)

    def put_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        self._path(key)
        tmp = self._tmp()
        with tmp.open("wb") as dst:
            dst.write(data)
            dst.flush()
            os.fsync(dst.fileno())
        return self._publish(key, tmp, create_only)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def size(self, key: str) -> int | None:
        try:
            path = self._path(key)
            return path.stat().st_size if path.is_file() else None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        fh = path.open("rb")  # raise FileNotFoundError now, not at the first chunk

        def chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(start)
                left = None if end is None else end - start + 1
                while left is None or left > 0:
                    data = fh.read(_CHUNK if left is None else min(_CHUNK, left))
                    if not data:
                        return
                    if left is not None:
                        left -= len(data)
                    yield data

        return chunks()

    def list(self, prefix: str) -> list[str]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root.joinpath(*base.split("/")) if base else self.root
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self._path(key).unlink()


# ---------------------------------------------------------------------------------------------
# S3


@dataclass(frozen=True)
class _S3Location:
    bucket: str
    prefix: str


class S3Storage:
    """Objects in an S3 (or S3-compatible) bucket under an optional prefix, through boto3.

    The endpoint comes from ``endpoint_url`` (``--s3-endpoint``) or ``REMORA_S3_ENDPOINT``;
    credentials and region come from boto3's usual sources (``AWS_ACCESS_KEY_ID``, ...).
    """

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RegistryError(
                "S3 storage needs boto3: pip install 'remora-lsp[registry]'"
            ) from exc
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise RegistryError(f"{url!r} is not an S3 URL such as s3://bucket/prefix")
        prefix = parsed.path.strip("/")
        self.url = url
        self._loc = _S3Location(parsed.netloc, f"{prefix}/" if prefix else "")
        endpoint = endpoint_url or os.environ.get("REMORA_S3_ENDPOINT") or None
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return self._loc.prefix + check_key(key)

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (test servers and first runs)."""
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self._loc.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self._loc.bucket)

    def _put(self, key: str, body: Any, create_only: bool) -> bool:
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": "*"} if create_only else {}
        try:
            self._client.put_object(Bucket=self._loc.bucket, Key=self._key(key), Body=body, **extra)
        except ClientError as exc:
            if create_only and self._code(exc) in {"PreconditionFailed", "412"}:
                return False
            raise
        return True

    def put_file(self, key: str, path: Path, *, create_only: bool = False) -> bool:
        if create_only:
            with path.open("rb") as body:
                return self._put(key, body, create_only)
        # Large files go up in parts; S3 shows the object only once the upload completes.
        self._client.upload_file(str(path), self._loc.bucket, self._key(key))
        return True

    def put_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        return self._put(key, data, create_only)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self._client.get_object(Bucket=self._loc.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._code(exc) in {"NoSuchKey", "404"}:
                return None
            raise
        data: bytes = obj["Body"].read()
        return data

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self._loc.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return int(head["ContentLength"])

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        rng = f"bytes={start}-{'' if end is None else end}"
        obj = self._client.get_object(Bucket=self._loc.bucket, Key=self._key(key), Range=rng)
        body = obj["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()

        return chunks()

    def list(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        full = self._loc.prefix + prefix
        out: list[str] = []
        for page in paginator.paginate(Bucket=self._loc.bucket, Prefix=full):
            for item in page.get("Contents", []):
                out.append(item["Key"][len(self._loc.prefix) :])
        return sorted(out)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._loc.bucket, Key=self._key(key))


def open_storage(url: str, *, s3_endpoint: str | None = None) -> Storage:
    """The backend a ``--storage`` value names: ``s3://bucket/prefix``, ``file://DIR`` or DIR."""
    if url.startswith("s3://"):
        storage = S3Storage(url, endpoint_url=s3_endpoint)
        storage.ensure_bucket()
        return storage
    if url.startswith("file://"):
        return LocalStorage(Path(urlparse(url).path))
    if "://" in url:
        raise RegistryError(f"unknown storage {url!r}: use a folder, file://DIR or s3://BUCKET")
    return LocalStorage(Path(url).expanduser())
