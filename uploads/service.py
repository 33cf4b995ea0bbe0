"""The upload flow: stream to a staging file with limits enforced as bytes arrive, then
validate and process off the event loop, then store the three renditions.

Staging lives on local disk under the data directory, one file per upload id, so an upload
that breaks can resume at the offset the file has reached, across restarts. Nothing reaches
object storage until the whole file is there and has passed validation; an abandoned staging
file is swept after it expires. This module knows bytes, not tickets: the caller decides who
may upload what.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from uploads import images
from uploads.storage import ObjectStore, new_key

SNIFF_BYTES = 64
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class UploadRefused(Exception):
    """A refusal with a stable code; nothing was stored."""

    def __init__(self, code: str, message: str, status: int = 422, **detail: object) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.detail = code, message, status, detail


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


class UploadPipeline:
    def __init__(self, store: ObjectStore, staging_dir: Path, limits: Limits, workers: int = 2) -> None:
        self.store = store
        self.staging = staging_dir
        self.limits = limits
        # Processes, not threads: Pillow holds the GIL while it encodes JPEGs into memory, which
        # kept the event loop waiting up to ~30 ms with a thread pool (bench/uploads.py).
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))

    def _path(self, upload_id: str) -> Path:
        if not _ID.match(upload_id):
            raise UploadRefused("upload_not_found", "上传不存在", status=404)
        return self.staging / upload_id

    async def offset(self, upload_id: str) -> int:
        path = self._path(upload_id)
        return await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else 0)

    async def write(self, upload_id: str, offset: int, declared_size: int, chunks: AsyncIterator[bytes]) -> int:
        """Append a chunk stream at ``offset``; returns the new offset.

        Refused as soon as the bytes say so: a file that is not a supported type (from its first
        bytes), or more bytes than declared or allowed. A refused upload's staging is removed.
        """
        path = self._path(upload_id)
        current = await self.offset(upload_id)
        if offset != current:
            raise UploadRefused("offset_mismatch", f"续传位置应为 {current}", status=409, offset=current)
        limit = min(declared_size, self.limits.max_file_bytes)
        await asyncio.to_thread(self.staging.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(open, path, "ab")
        written = current
        head = b"" if current == 0 else None  # the type is judged from the file's first bytes
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if written + len(chunk) > limit:
                    too_big = declared_size > self.limits.max_file_bytes or written + len(chunk) > self.limits.max_file_bytes
                    raise UploadRefused(
                        "file_too_large" if too_big else "size_mismatch",
                        f"文件超过 {self.limits.max_file_bytes // (1024 * 1024)} MB 上限" if too_big else "文件比声明的大",
                        status=413 if too_big else 422,
                    )
                if head is not None and len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES or written + len(chunk) >= declared_size:
                        if images.sniff(head) is None:
                            raise UploadRefused("unsupported_type", "只支持 JPEG、PNG、WebP、HEIC 照片和 PDF 文件")
                await asyncio.to_thread(handle.write, chunk)
                written += len(chunk)
        except UploadRefused:
            await asyncio.to_thread(handle.close)
            await self.discard(upload_id)
            raise
        finally:
            if not handle.closed:
                await asyncio.to_thread(handle.close)
        return written

    async def finish(self, upload_id: str, *, watermark: str | None, known_sha256: set[str] | None = None) -> StoredFile | str:
        """Validate and process the complete staged file, store it, and return what was stored.

        Returns the sha256 instead, storing nothing, when it is one of ``known_sha256`` (the
        same file twice on a case).
        """
        path = self._path(upload_id)
        data = await asyncio.to_thread(path.read_bytes)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if known_sha256 and digest in known_sha256:
            await self.discard(upload_id)
            return digest
        try:
            processed = await self._run_process(data, watermark)
        except images.Rejected as exc:
            await self.discard(upload_id)
            raise UploadRefused(exc.code, exc.message) from exc
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
        await self.discard(upload_id)
        return StoredFile(
            content_type=processed.content_type, size=len(data), width=processed.width, height=processed.height,
            page_count=processed.page_count, sha256=digest, original_key=keys[0], viewing_key=keys[1],
            thumbnail_key=keys[2],
        )

    async def _run_process(self, data: bytes, watermark: str | None) -> images.Processed:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, process_image, data, watermark, self.limits)

    async def discard(self, upload_id: str) -> None:
        path = self._path(upload_id)
        await asyncio.to_thread(lambda: path.unlink(missing_ok=True))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def process_image(data: bytes, watermark: str | None, limits: Limits) -> images.Processed:
    """Runs in a worker process."""
    return images.process(
        data, max_pixels=limits.max_pixels, long_side=limits.long_side, viewing_side=limits.viewing_side,
        thumb_side=limits.thumbnail_side, watermark=watermark,
    )


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


