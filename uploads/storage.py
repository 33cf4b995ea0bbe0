"""Object storage behind one async interface: a local directory or an S3-compatible bucket.

Keys are opaque (``new_key``) and never built from names users type, so neither store has to
trust a path. Every blocking call — file I/O, the ``minio`` client — runs in a worker thread;
the ``minio`` client is always called with keyword arguments because its signatures have moved
between releases. Browser links are short-lived: the local store signs an app URL with an HMAC
key, the S3 store presigns for the endpoint the *browser* reaches (``public_endpoint``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import os
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urlsplit
from uuid import uuid4

import urllib3.exceptions
from minio import Minio
from minio.error import MinioException, S3Error

__all__ = [
    "MIN_PART_SIZE",
    "LocalStore",
    "ObjectReader",
    "ObjectStore",
    "ObjectWriter",
    "S3Store",
    "StorageError",
    "StoreUpkeep",
    "content_disposition",
    "minio_client",
    "new_key",
    "private_dir",
    "validate_key",
]

ErrorCode = Literal["object_not_found", "invalid_key", "storage_unavailable", "upload_not_found"]

CHUNK_SIZE = 1024 * 1024
# S3 refuses multipart parts under 5 MiB except the last (minio's put_object sends parts).
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_URL_EXPIRY = 7 * 24 * 3600
_KEY_RE = re.compile(r"[a-z0-9_-]+(?:/[a-z0-9_-]+)*")
_MAX_KEY_LENGTH = 512

T = TypeVar("T")


class StorageError(Exception):
    """A storage failure with a stable ``code`` for programs and a message for people."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code: ErrorCode = code
        self.message = message


def validate_key(key: str) -> str:
    """Refuse anything but lower-case ``[a-z0-9_-]`` segments joined by single slashes."""
    if not isinstance(key, str) or len(key) > _MAX_KEY_LENGTH or not _KEY_RE.fullmatch(key):
        raise StorageError("invalid_key", f"invalid object key {key!r}")
    return key


def new_key(prefix: str) -> str:
    """An opaque, unique key under ``prefix`` (itself a valid key, e.g. ``documents/original``)."""
    return validate_key(f"{validate_key(prefix)}/{uuid4().hex}")


def private_dir(path: Path) -> None:
    """Make ``path`` a folder only its owner may enter (0700), creating missing parents the same way.

    Parents that already exist are left as they are; ``path`` itself is tightened if it is not.
    """
    missing: list[Path] = []
    folder = Path(path)
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:
            pass  # made by someone else meanwhile (or a file: the next step says so)
    if Path(path).stat().st_mode & 0o077:
        os.chmod(path, 0o700)


def _private(path: str, flags: int) -> int:
    """``opener`` for ``open()``: new files readable by their owner only (0600)."""
    return os.open(path, flags, 0o600)


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` value that survives Chinese file names (RFC 6266 / 5987)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename).strip() or "download"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _check_expires(expires: int) -> int:
    if not 1 <= expires <= MAX_URL_EXPIRY:
        raise ValueError(f"expires must be between 1 and {MAX_URL_EXPIRY} seconds")
    return expires


class ObjectReader(Protocol):
    """Reading objects and handing browsers short-lived links to them."""

    async def get(self, key: str) -> AsyncIterator[bytes]: ...

    async def read(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def url(self, key: str, *, expires: int = 300, filename: str | None = None) -> str: ...


class ObjectWriter(Protocol):
    """Storing and removing objects: what the upload pipeline and retention do."""

    async def put(self, key: str, stream: AsyncIterator[bytes] | bytes, *, length: int | None = None,
                  content_type: str = "application/octet-stream") -> int: ...

    async def delete(self, key: str) -> None: ...


class StoreUpkeep(Protocol):
    """The store's own lifecycle: made ready (and checked) at start, swept, closed at stop."""

    async def ensure_ready(self) -> None: ...

    async def sweep_leftovers(self, older_than_seconds: float, now: float) -> int:
        """Remove what puts that crashed or were cancelled left behind for ``older_than_seconds``;
        returns how many things were removed."""
        ...

    async def close(self) -> None:
        """Let go of what the store holds open (connections); the app calls it when it stops."""


class ObjectStore(ObjectReader, ObjectWriter, StoreUpkeep, Protocol):
    """All of the above, as the app builds it (``LocalStore`` or ``S3Store``) and hands it out;
    each user names only the part it needs."""


async def _read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class _LengthCheck:
    """Counts streamed bytes and refuses a stream that disagrees with its declared length."""

    def __init__(self, length: int | None) -> None:
        if length is not None and length < 0:
            raise ValueError("length must not be negative")
        self.length, self.total = length, 0

    def add(self, size: int) -> None:
        self.total += size
        if self.length is not None and self.total > self.length:
            raise ValueError(f"stream is longer than the declared {self.length} bytes")

    def finish(self) -> None:
        if self.length is not None and self.total != self.length:
            raise ValueError(f"stream ended after {self.total} of {self.length} bytes")


# --------------------------------------------------------------------------- local directory


class LocalStore:
    """Objects as files under ``root``; links are app URLs signed with ``signing_key``.

    Writes land in ``root/.tmp`` and are renamed into place, so a half-written upload is never
    visible under its key; keys cannot contain dots, so the folder cannot collide with an object.
    What a crash or a cancelled put leaves there is removed by ``sweep_leftovers``. Folders are 0700 and files 0600: other
    users of the machine read nothing. Content types are not kept here: the app knows them from
    its own records.
    """

    def __init__(self, root: Path, signing_key: bytes, url_prefix: str = "/api/objects", *,
                 clock: Callable[[], float] = time.time) -> None:
        if not signing_key:
            raise ValueError("LocalStore needs a non-empty signing key")
        self.root = Path(root)
        self._signing_key = bytes(signing_key)
        self._url_prefix = url_prefix.rstrip("/")
        self._clock = clock
        self._tmp = self.root / ".tmp"

    async def close(self) -> None:
        """Nothing to let go: no file stays open between calls."""

    async def ensure_ready(self) -> None:
        def make() -> None:
            for folder in (self.root, self._tmp):
                private_dir(folder)

        await asyncio.to_thread(make)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    # -- whole objects

    async def put(self, key: str, stream: AsyncIterator[bytes] | bytes, *, length: int | None = None,
                  content_type: str = "application/octet-stream") -> int:
        final = self._path(key)
        check = _LengthCheck(length)
        tmp = await asyncio.to_thread(self._open_tmp)
        try:
            if isinstance(stream, (bytes, bytearray, memoryview)):
                check.add(len(stream))
                await asyncio.to_thread(tmp.write, stream)
            else:
                async for chunk in stream:
                    check.add(len(chunk))
                    await asyncio.to_thread(tmp.write, chunk)
            check.finish()
            await asyncio.to_thread(self._publish, tmp, final)
        except BaseException:
            await asyncio.to_thread(_discard, tmp)
            raise
        return check.total

    def _open_tmp(self) -> io.BufferedWriter:
        private_dir(self._tmp)
        return open(self._tmp / f"{uuid4().hex}.tmp", "xb", opener=_private)

    @staticmethod
    def _publish(tmp: io.BufferedWriter, final: Path) -> None:
        tmp.flush()
        os.fsync(tmp.fileno())
        tmp.close()
        try:
            private_dir(final.parent)
            os.replace(tmp.name, final)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise StorageError("invalid_key", "key collides with another key's folder") from exc

    async def get(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise StorageError("object_not_found", key) from exc
        return self._chunks(handle)

    @staticmethod
    async def _chunks(handle: io.BufferedReader) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def read(self, key: str) -> bytes:
        return await _read_all(await self.get(key))

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def unlink() -> None:
            try:
                path.unlink(missing_ok=True)
            except (NotADirectoryError, IsADirectoryError):
                pass  # a folder of other keys, or below a file: no object by this key

        await asyncio.to_thread(unlink)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    # -- signed app URLs

    def _signature(self, key: str, expires: int, filename: str | None) -> str:
        message = f"{key}\n{expires}\n{filename or ''}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    async def url(self, key: str, *, expires: int = 300, filename: str | None = None) -> str:
        validate_key(key)
        until = int(self._clock()) + _check_expires(expires)
        link = f"{self._url_prefix}/{key}?expires={until}&sig={self._signature(key, until, filename)}"
        if filename:
            link += f"&filename={quote(filename, safe='')}"
        return link

    def verify(self, key: str, expires: int | str, sig: str, now: float, *,
               filename: str | None = None) -> bool:
        """Whether a link from ``url()`` is genuine and unexpired (constant-time compare)."""
        try:
            validate_key(key)
            until = int(expires)
        except (StorageError, TypeError, ValueError):
            return False
        expected = self._signature(key, until, filename)
        genuine = hmac.compare_digest(expected.encode(), str(sig).encode("utf-8", "replace"))
        return genuine and now <= until

    async def sweep_leftovers(self, older_than_seconds: float, now: float) -> int:
        """Remove temp files untouched for ``older_than_seconds``: puts that a crash cut short."""
        cutoff = now - older_than_seconds

        def sweep() -> int:
            removed = 0
            try:
                entries = list(self._tmp.iterdir())
            except FileNotFoundError:
                return 0
            for entry in entries:
                try:
                    if entry.stat().st_mtime >= cutoff:
                        continue
                    entry.unlink()
                except FileNotFoundError:
                    continue  # finished or swept by someone else meanwhile
                removed += 1
            return removed

        return await asyncio.to_thread(sweep)


def _discard(tmp: io.BufferedWriter) -> None:
    tmp.close()
    Path(tmp.name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- S3 / MinIO


class _StreamFailed(Exception):
    """Carries an error raised by the caller's stream through minio's upload loop."""


class _StreamReader:
    """A blocking ``read()`` over an async iterator, for minio running in a worker thread.

    Each ``read`` asks the event loop for the next chunks and waits, so only about one part
    (``part_size``) of the stream is held at a time. Chunks are kept as they come and joined
    once per read, so a part is not copied over and over while it fills.
    """

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop,
                 check: _LengthCheck) -> None:
        self._chunks = chunks.__aiter__()
        self._loop = loop
        self._check = check
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._eof = False
        self.cancelled = threading.Event()

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def _pull(self) -> None:
        if self.cancelled.is_set():
            raise _StreamFailed("upload cancelled")
        try:
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            if chunk is None:
                self._eof = True
                self._check.finish()
                return
            self._check.add(len(chunk))
            self._pending.append(bytes(chunk))
            self._pending_size += len(chunk)
            if self._check.length is not None and self._check.total >= self._check.length:
                self._pull()  # confirm the end now: minio stops reading at `length`
        except _StreamFailed:
            raise
        except BaseException as exc:
            raise _StreamFailed(str(exc)) from exc

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or self._pending_size < size):
            self._pull()
        if size < 0 or size >= self._pending_size:
            taken = list(self._pending)
            self._pending.clear()
        else:
            taken, need = [], size
            while need:
                head = self._pending.popleft()
                if len(head) > need:
                    self._pending.appendleft(head[need:])
                    head = head[:need]
                taken.append(head)
                need -= len(head)
        data = b"".join(taken)
        self._pending_size -= len(data)
        return data


def _endpoint(value: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` (TLS per ``secure``) or ``http(s)://host:port`` (TLS per scheme)."""
    if "://" not in value:
        return value, secure
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"S3 endpoint must be host[:port] or http(s)://host[:port], got {value!r}")
    return parts.netloc, parts.scheme == "https"


def minio_client(endpoint: str, access_key: str, secret_key: str, *, secure: bool = False,
                 region: str = "us-east-1") -> Minio:
    """The client for ``endpoint`` (``host:port`` or ``http(s)://host:port``), as the store and
    the backup command (uploads/backup.py) use it."""
    host, tls = _endpoint(endpoint, secure)
    return Minio(endpoint=host, access_key=access_key, secret_key=secret_key, secure=tls, region=region)


_S3_CODES: dict[str, ErrorCode] = {
    "NoSuchKey": "object_not_found",
    "NoSuchUpload": "upload_not_found",
}


def _translate(exc: BaseException) -> StorageError:
    if isinstance(exc, S3Error):
        return StorageError(_S3_CODES.get(exc.code or "", "storage_unavailable"),
                            f"{exc.code}: {exc.message}")
    return StorageError("storage_unavailable", str(exc) or type(exc).__name__)


class S3Store:
    """Objects in an S3-compatible bucket (MinIO in the deployment), through ``minio.Minio``.

    ``endpoint`` is what this server reaches (e.g. ``minio:9000`` inside compose);
    ``public_endpoint`` is what browsers reach (e.g. ``https://files.example.gov.cn``).
    Presigned links are signed by a second client for the public endpoint — signing needs no
    network call because the region is given. The bucket is created private and never given a
    policy; a lifecycle rule ``AbortIncompleteMultipartUpload`` on the bucket is a good
    companion to ``sweep_leftovers``.
    """

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = False, public_endpoint: str | None = None,
                 region: str = "us-east-1", part_size: int = 10 * 1024 * 1024) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
        self.bucket = bucket
        self._region = region
        self._part_size = part_size
        self._client = minio_client(endpoint, access_key, secret_key, secure=secure, region=region)
        if public_endpoint is None:
            self._signer = self._client
        else:
            self._signer = minio_client(public_endpoint, access_key, secret_key, secure=secure, region=region)

    async def close(self) -> None:
        """Close the kept-alive connections of the client's pool (minio has no call for it: its
        urllib3 ``PoolManager`` is ``_http``, minio 7). The signer makes no connection."""
        await asyncio.to_thread(self._client._http.clear)

    async def _call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc) from exc

    async def ensure_ready(self) -> None:
        if await self._call(self._client.bucket_exists, bucket_name=self.bucket):
            return
        try:
            await self._call(self._client.make_bucket, bucket_name=self.bucket, location=self._region)
        except StorageError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, S3Error) and cause.code == "BucketAlreadyOwnedByYou"):
                raise

    # -- whole objects

    async def put(self, key: str, stream: AsyncIterator[bytes] | bytes, *, length: int | None = None,
                  content_type: str = "application/octet-stream") -> int:
        validate_key(key)
        check = _LengthCheck(length)
        if isinstance(stream, (bytes, bytearray, memoryview)):
            check.add(len(stream))
            check.finish()
            await self._call(self._client.put_object, bucket_name=self.bucket, object_name=key,
                             data=io.BytesIO(stream), length=check.total, content_type=content_type)
            return check.total
        reader = _StreamReader(stream, asyncio.get_running_loop(), check)
        # Unknown length: minio buffers up to one part, then switches to multipart; with a known
        # length it decides up front. One part in flight at a time bounds memory by the part
        # size (about 3 x part_size measured: minio copies a part twice), not the object size.
        try:
            await self._call(self._client.put_object, bucket_name=self.bucket, object_name=key,
                             data=reader, length=-1 if length is None else length,
                             content_type=content_type, part_size=self._part_size,
                             num_parallel_uploads=1)
        except asyncio.CancelledError:
            reader.cancelled.set()  # the worker thread stops at its next read; minio aborts
            raise
        except _StreamFailed as exc:
            original = exc.__cause__
            if original is None:
                raise
            # The caller's own error (or a length mismatch), unwrapped with its own cause.
            raise original from original.__cause__
        return check.total

    async def get(self, key: str) -> AsyncIterator[bytes]:
        validate_key(key)
        response = await self._call(self._client.get_object, bucket_name=self.bucket, object_name=key)
        return self._chunks(response)

    async def _chunks(self, response: Any) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._call(response.read, amt=CHUNK_SIZE):
                yield chunk
        finally:
            await asyncio.to_thread(_release, response)

    async def read(self, key: str) -> bytes:
        return await _read_all(await self.get(key))

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._call(self._client.remove_object, bucket_name=self.bucket, object_name=key)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            await self._call(self._client.stat_object, bucket_name=self.bucket, object_name=key)
        except StorageError as exc:
            if exc.code == "object_not_found":
                return False
            raise
        return True

    async def url(self, key: str, *, expires: int = 300, filename: str | None = None) -> str:
        validate_key(key)
        headers = {"response-content-disposition": content_disposition(filename)} if filename else None
        return await self._call(self._signer.presigned_get_object, bucket_name=self.bucket,
                                object_name=key, expires=timedelta(seconds=_check_expires(expires)),
                                response_headers=headers)

    async def sweep_leftovers(self, older_than_seconds: float, now: float) -> int:
        """Abort multipart uploads *started* more than ``older_than_seconds`` before ``now``:
        what minio's ``put_object`` leaves in the bucket when the process dies mid-object.

        S3 reports when an upload began, not when its last part arrived, so pick an age well
        beyond the longest put you expect. minio 7.2 has no public call to list or abort them:
        ``_list_multipart_uploads`` and ``_abort_multipart_upload`` are the SDK's own, so check
        their signatures when upgrading minio.
        """
        cutoff = now - older_than_seconds
        removed = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = await self._call(self._client._list_multipart_uploads, bucket_name=self.bucket,
                                    key_marker=key_marker, upload_id_marker=upload_marker)
            for upload in page.uploads:
                started = upload.initiated_time
                if started is None or started.timestamp() >= cutoff:
                    continue
                try:
                    await self._call(self._client._abort_multipart_upload, bucket_name=self.bucket,
                                     object_name=upload.object_name, upload_id=upload.upload_id)
                except StorageError as exc:
                    if exc.code != "upload_not_found":
                        raise
                    continue
                removed += 1
            if not page.is_truncated or not page.uploads:
                return removed
            # minio 7.2 drops NextUploadIdMarker; the last entry of the page is the same marker.
            key_marker, upload_marker = page.uploads[-1].object_name, page.uploads[-1].upload_id


def _release(response: Any) -> None:
    response.close()
    response.release_conn()
