"""The upload flow: stream to a staging file with limits enforced as bytes arrive, then
validate and process off the event loop, then store the three renditions.

Staging lives on local disk under the data directory, one file per upload id (mode 0600 in a
0700 folder), so an upload that breaks can resume at the offset the file has reached, across
restarts. One request at a time works on an upload's file: it holds an OS lock on it (``hold``),
so concurrent writes cannot both land, even from another process or node sharing the folder.
Nothing reaches object storage until the whole file is there and has passed validation; an
abandoned staging file is swept after it expires. This module knows bytes, not tickets: the
caller decides who may upload what.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import multiprocessing
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from uploads import images
from uploads.storage import ObjectWriter, new_key, private_dir

SNIFF_BYTES = 64
BUSY_POLL_SECONDS = 0.1
FINISH_WAIT_SECONDS = 60.0
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class UploadRefused(Exception):
    """A refusal with a stable code; nothing was stored."""

    def __init__(self, code: str, message: str, status: int = 422, *, final: bool = False, **detail: object) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.detail = code, message, status, detail
        self.final = final  # the bytes themselves were refused: the upload cannot go on


@dataclass(frozen=True)
class StoredFile:
    content_type: str
    size: int
    width: int | None
    height: int | None
    page_count: int | None
    sha256: str
    original_key: str
    viewing_key: str
    thumbnail_key: str


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_pixels: int
    long_side: int
    thumbnail_side: int
    viewing_side: int


class Staged:
    """One upload's staging file, held exclusively until ``close``.

    The hold is an OS lock (``flock``) on the open file: it keeps out a second request in this
    process, another worker process, and another node sharing the staging directory (NFS
    carries ``flock`` as a whole-file lock). It goes away with the process, so a crash never
    leaves an upload locked.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        # A write still running in a worker thread finishes before the descriptor is closed,
        # and none starts after: a closed number may already name another file.
        self._io = threading.Lock()

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def append(self, data: bytes) -> None:
        with self._io:
            if self.fd < 0:
                raise OSError("the staging file was let go")
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def read(self) -> bytes:
        return self.path.read_bytes()

    def remove(self) -> None:
        """Delete the staged bytes while still holding them (nobody can be writing)."""
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._io:
            if self.fd >= 0:
                os.close(self.fd)  # releases the lock
                self.fd = -1


class _Busy(Exception):
    pass


def _acquire(path: Path, create: bool) -> int | None:
    """Open and lock the staging file without waiting: its descriptor, or None when there is no
    such file (and ``create`` is false). Raises ``_Busy`` when someone else holds it."""
    while True:
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _Busy from None
        # The holder before us may have removed the file (filed or refused) after we opened it:
        # only the file still at the path counts.
        mine = os.fstat(fd)
        try:
            there = os.stat(path)
        except FileNotFoundError:
            there = None
        if there is not None and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)
        if there is None and not create:
            return None


def _close_acquired(task: asyncio.Future[int | None]) -> None:
    if not task.cancelled() and task.exception() is None and (fd := task.result()) is not None:
        os.close(fd)


class UploadPipeline:
    def __init__(self, store: ObjectWriter, staging_dir: Path, limits: Limits, workers: int = 2) -> None:
        self.store = store
        self.staging = staging_dir
        self.limits = limits
        # Processes, not threads: Pillow holds the GIL while it encodes JPEGs into memory, which
        # kept the event loop waiting up to ~30 ms with a thread pool (bench/uploads.py).
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
        # Locks still being taken for a request that went away: let go once taken, awaited by close
        self._abandoned: set[asyncio.Task[int | None]] = set()

    def _path(self, upload_id: str) -> Path:
        if not _ID.match(upload_id):
            raise UploadRefused("upload_not_found", "上传不存在", status=404)
        return self.staging / upload_id

    async def offset(self, upload_id: str) -> int:
        path = self._path(upload_id)
        return await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else 0)

    @asynccontextmanager
    async def hold(self, upload_id: str, *, create: bool = False, wait_seconds: float = 0.0) -> AsyncIterator[Staged | None]:
        """The upload's staging file, exclusively; None when nothing is staged (``create`` false).

        Someone else holding it: wait up to ``wait_seconds``, then 409 ``upload_busy``.
        """
        path = self._path(upload_id)
        if create:
            await asyncio.to_thread(private_dir, self.staging)
        deadline = time.monotonic() + wait_seconds
        while True:
            task = asyncio.create_task(asyncio.to_thread(_acquire, path, create), name="staging lock")
            try:
                fd = await asyncio.shield(task)
                break
            except _Busy:
                if time.monotonic() >= deadline:
                    raise UploadRefused("upload_busy", "该文件正在上传或处理中，请稍候再试", status=409) from None
                await asyncio.sleep(BUSY_POLL_SECONDS)
            except asyncio.CancelledError:
                if not task.done():
                    self._abandoned.add(task)
                    task.add_done_callback(self._abandoned.discard)
                task.add_done_callback(_close_acquired)  # a lock taken after all is let go at once
                raise
        staged = Staged(path, fd) if fd is not None else None
        try:
            yield staged
        finally:
            if staged is not None:
                staged.close()

    async def write(self, upload_id: str, offset: int, declared_size: int, chunks: AsyncIterator[bytes]) -> int:
        """Append a chunk stream at ``offset``; returns the new offset.

        One writer at a time (``hold``): a second request for the same upload is turned away with
        ``upload_busy`` and changes nothing, and the offset is checked under the lock, so the
        staged file never outgrows the declared size. Refused as soon as the bytes say so: a file
        that is not a supported type (from its first bytes), or more bytes than declared or
        allowed; such a refusal is ``final`` and the staging is removed.
        """
        async with self.hold(upload_id, create=True) as staged:
            assert staged is not None
            current = staged.size
            if offset != current:
                raise UploadRefused("offset_mismatch", f"续传位置应为 {current}", status=409, offset=current)
            try:
                return await self._append(staged, current, declared_size, chunks)
            except UploadRefused:
                await asyncio.to_thread(staged.remove)
                raise

    async def _append(self, staged: Staged, current: int, declared_size: int, chunks: AsyncIterator[bytes]) -> int:
        limit = min(declared_size, self.limits.max_file_bytes)
        written = current
        head = b"" if current == 0 else None  # the type is judged from the file's first bytes
        async for chunk in chunks:
            if not chunk:
                continue
            if written + len(chunk) > limit:
                too_big = declared_size > self.limits.max_file_bytes or written + len(chunk) > self.limits.max_file_bytes
                raise UploadRefused(
                    "file_too_large" if too_big else "size_mismatch",
                    f"文件超过 {self.limits.max_file_bytes // (1024 * 1024)} MB 上限" if too_big else "文件比声明的大",
                    status=413 if too_big else 422, final=True,
                )
            if head is not None and len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES or written + len(chunk) >= declared_size:
                    if images.sniff(head) is None:
                        raise UploadRefused("unsupported_type", "只支持 JPEG、PNG、WebP、HEIC 照片和 PDF 文件", final=True)
            await asyncio.to_thread(staged.append, chunk)
            written += len(chunk)
        return written

    async def store_staged(self, staged: Staged, *, watermark: str | None,
                           known_sha256: set[str] | None = None) -> StoredFile | str:
        """Validate and process the complete staged file, store it, and return what was stored.

        Returns the sha256 instead, storing nothing, when it is one of ``known_sha256`` (the
        same file twice on a case). The staged bytes stay: the caller removes them once it has
        recorded the outcome, still holding them.
        """
        data = await asyncio.to_thread(staged.read)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if known_sha256 and digest in known_sha256:
            return digest
        try:
            processed = await self._run_process(data, watermark)
        except images.Rejected as exc:
            raise UploadRefused(exc.code, exc.message, final=True) from exc
        keys = (new_key("documents/original"), new_key("documents/viewing"), new_key("documents/thumbnail"))
        viewing_type = "image/jpeg"
        try:
            await self.store.put(keys[0], processed.clean_original, content_type=processed.content_type)
            await self.store.put(keys[1], processed.viewing, content_type=viewing_type)
            await self.store.put(keys[2], processed.thumbnail, content_type="image/jpeg")
        except BaseException:
            for key in keys:
                await self.store.delete(key)
            raise
        return StoredFile(
            content_type=processed.content_type, size=len(data), width=processed.width, height=processed.height,
            page_count=processed.page_count, sha256=digest, original_key=keys[0], viewing_key=keys[1],
            thumbnail_key=keys[2],
        )

    async def finish(self, upload_id: str, *, watermark: str | None, known_sha256: set[str] | None = None) -> StoredFile | str:
        """``store_staged`` for a whole staged upload, removing its staging afterwards."""
        async with self.hold(upload_id, wait_seconds=FINISH_WAIT_SECONDS) as staged:
            if staged is None:
                raise UploadRefused("upload_not_found", "上传不存在", status=404)
            try:
                return await self.store_staged(staged, watermark=watermark, known_sha256=known_sha256)
            finally:
                await asyncio.to_thread(staged.remove)

    async def _run_process(self, data: bytes, watermark: str | None) -> images.Processed:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, process_image, data, watermark, self.limits)

    async def discard(self, upload_id: str) -> None:
        path = self._path(upload_id)
        await asyncio.to_thread(lambda: path.unlink(missing_ok=True))

    async def sweep(self, older_than_seconds: float, now: float) -> int:
        """Remove staging files untouched for ``older_than_seconds`` (by wall-clock ``now``).

        Use the upload lifetime: a file idle that long belongs to an expired upload, or to none
        (its session was forgotten while bytes were still arriving, or before a crash).
        """
        cutoff = now - older_than_seconds

        def sweep() -> int:
            removed = 0
            try:
                entries = list(self.staging.iterdir())
            except FileNotFoundError:
                return 0
            for entry in entries:
                try:
                    if not _ID.match(entry.name) or not entry.is_file() or entry.stat().st_mtime >= cutoff:
                        continue
                    entry.unlink()
                except FileNotFoundError:
                    continue
                removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    async def close(self) -> None:
        """Let go of abandoned locks; stop the worker processes (what they are processing is
        finished, what waits for them is cancelled) and wait until they have exited."""
        await asyncio.gather(*self._abandoned, return_exceptions=True)
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)


def process_image(data: bytes, watermark: str | None, limits: Limits) -> images.Processed:
    """Runs in a worker process."""
    return images.process(
        data, max_pixels=limits.max_pixels, long_side=limits.long_side, viewing_side=limits.viewing_side,
        thumb_side=limits.thumbnail_side, watermark=watermark,
    )
