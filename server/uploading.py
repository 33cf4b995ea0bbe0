"""Document uploads: domain checks, the streaming pipeline and object storage, in order.

The domain says who may upload what and records documents; ``uploads`` moves and processes
bytes. This module only sequences them (a transaction never stays open while bytes stream).

An upload is worked on by one request at a time: a write or a complete holds its staging file
(``UploadPipeline.hold``) from the last check to the end, so two writes cannot both append and
two completes cannot both file. A complete sent again — its answer was lost — answers with the
document the upload became. An upload whose case closed, or whose uploader left the case, is
forgotten at its next write or complete, with its staged bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Protocol

from server.domain import documents, hours
from server.domain.context import Actor
from server.domain.errors import DomainError
from server.models import UploadSession
from server.runtime import Domain
from uploads.service import Staged, StoredFile, UploadPipeline, UploadRefused
from uploads.storage import ObjectWriter, StorageError, StoreUpkeep

log = logging.getLogger("yunbang")

# What a crash or a cancelled put leaves in the object store's temporary folders is older
# than any put still running after this long.
STORE_LEFTOVER_SECONDS = 3600
# A complete waits this long for another request working on the same upload (a write, or
# the same complete sent twice) before answering ``upload_busy``.
COMPLETE_WAIT_SECONDS = 60.0


class UploadsStore(ObjectWriter, StoreUpkeep, Protocol):
    """What the upload flow does to the store itself: drop a refused file's objects, sweep."""


def refused(exc: UploadRefused) -> DomainError:
    error = DomainError(exc.code, exc.message, **exc.detail)
    error.status = exc.status
    return error


class DocumentUploads:
    def __init__(self, domain: Domain, pipeline: UploadPipeline, store: UploadsStore, *,
                 wall_clock: Callable[[], float] = time.time,
                 processed: Callable[[str, float], None] = lambda outcome, seconds: None) -> None:
        """``processed(outcome, seconds)`` hears how long each complete upload took to process and
        store: ``stored``, ``duplicate`` (a file the case had), ``refused`` or ``failed``."""
        self.domain, self.pipeline, self.store = domain, pipeline, store
        self.wall_clock = wall_clock  # file ages are wall-clock times, whatever the domain's clock says
        self.processed = processed

    async def begin(self, actor: Actor, ticket_id: int, *, material: str, size: int, filename: str = "",
                    source: str = "upload") -> dict[str, Any]:
        async with self.domain.unit() as uow:
            upload = await documents.begin_upload(uow, actor, ticket_id, material=material, size=size,
                                                  filename=filename, source=source)
        return self._progress(upload.id, 0, upload.size, upload.expires_at)

    def _progress(self, upload_id: str, offset: int, size: int, expires_at: datetime | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {"upload_id": upload_id, "offset": offset, "size": size,
                                "chunk_bytes": self.domain.settings.documents.chunk_bytes}
        if expires_at is not None:
            view["expires_at"] = expires_at.isoformat()
        return view

    async def status(self, actor: Actor, upload_id: str) -> dict[str, Any]:
        async with self.domain.unit(write=False) as uow:
            upload = await documents.upload_session(uow, actor, upload_id)
        if upload.document_id is not None:
            view = self._progress(upload.id, upload.size, upload.size)
            view["document_id"] = upload.document_id
            return view
        return self._progress(upload.id, await self.pipeline.offset(upload.id), upload.size, upload.expires_at)

    async def _open(self, actor: Actor, upload_id: str) -> UploadSession:
        """The upload, if it may still go on; a dead one (case closed) is forgotten here."""
        try:
            async with self.domain.unit(write=False) as uow:
                return await documents.open_upload(uow, actor, upload_id)
        except DomainError as exc:
            if exc.code == "call_not_open":
                await self._forget(upload_id)
            raise

    async def _forget(self, upload_id: str, staged: Staged | None = None) -> None:
        async with self.domain.unit() as uow:
            await documents.forget_upload(uow, upload_id)
        if staged is not None:
            await asyncio.to_thread(staged.remove)
        else:
            await self.pipeline.discard(upload_id)

    async def write(self, actor: Actor, upload_id: str, offset: int, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        upload = await self._open(actor, upload_id)
        try:
            reached = await self.pipeline.write(upload.id, offset, upload.size, chunks)
        except UploadRefused as exc:
            if exc.final:
                await self._forget(upload.id)
            raise refused(exc) from exc
        return self._progress(upload.id, reached, upload.size)

    async def complete(self, actor: Actor, upload_id: str) -> tuple[dict[str, Any], int]:
        """Process and file the upload: (the document, 201); (it, 200) when it is a file the case
        already had, or when this upload was filed already (the same complete sent again)."""
        async with self.domain.unit(write=False) as uow:
            upload = await documents.upload_session(uow, actor, upload_id)
            filed = await documents.filed_document(uow, actor, upload)
        if filed is not None:
            return filed, 200
        try:
            async with self.pipeline.hold(upload_id, wait_seconds=COMPLETE_WAIT_SECONDS) as staged:
                return await self._complete_held(actor, upload_id, staged)
        except UploadRefused as exc:
            raise refused(exc) from exc

    async def _complete_held(self, actor: Actor, upload_id: str, staged: Staged | None) -> tuple[dict[str, Any], int]:
        # Whoever held the upload before us may have filed it, or the case may have closed.
        try:
            async with self.domain.unit(write=False) as uow:
                upload = await documents.upload_session(uow, actor, upload_id)
                filed = await documents.filed_document(uow, actor, upload)
                if filed is not None:
                    return filed, 200
                await documents.open_upload(uow, actor, upload_id)
                item = await documents.item_name(uow, upload.ticket_id)
                existing = {d.sha256: d for d in await documents.list_documents(uow, actor, upload.ticket_id)}
        except DomainError as exc:
            if exc.code == "call_not_open":
                await self._forget(upload_id, staged)
            raise
        reached = staged.size if staged is not None else 0
        if staged is None or reached != upload.size:
            raise DomainError("upload_incomplete", f"还差 {upload.size - reached} 字节未上传", offset=reached)
        today = hours.local_day(self.domain.settings.queue, self.domain.clock.now())
        watermark = self.domain.settings.documents.watermark.format(item=item, date=today.isoformat())
        started, outcome = time.perf_counter(), "failed"
        try:
            result = await self.pipeline.store_staged(staged, watermark=watermark, known_sha256=set(existing))
            outcome = "duplicate" if isinstance(result, str) else "stored"
        except UploadRefused:
            outcome = "refused"
            await self._forget(upload_id, staged)
            raise
        finally:
            self.processed(outcome, time.perf_counter() - started)
        if isinstance(result, str):
            try:
                async with self.domain.unit() as uow:
                    view = await documents.file_duplicate(uow, actor, upload_id, existing[result].id)
            except DomainError as exc:
                if exc.code == "call_not_open":
                    await self._forget(upload_id, staged)
                raise
            await asyncio.to_thread(staged.remove)
            return view, 200
        return await self._file(actor, upload_id, staged, result)

    async def _file(self, actor: Actor, upload_id: str, staged: Staged, stored: StoredFile) -> tuple[dict[str, Any], int]:
        try:
            async with self.domain.unit() as uow:
                document, created = await documents.file_document(uow, actor, upload_id, stored)
                view = documents.document_view(document)
        except BaseException as exc:
            await self._drop(stored)
            if isinstance(exc, DomainError) and exc.code in ("call_not_open", "too_many_files"):
                await self._forget(upload_id, staged)
            raise
        if not created:  # filed by another complete meanwhile (staging not shared with it)
            await self._drop(stored)
            return view, 200
        await asyncio.to_thread(staged.remove)
        return view, 201

    async def _drop(self, stored: StoredFile) -> None:
        for key in (stored.original_key, stored.viewing_key, stored.thumbnail_key):
            await self.store.delete(key)

    async def upload_whole(self, actor: Actor, ticket_id: int, *, material: str, size_hint: int,
                           chunks: AsyncIterator[bytes], source: str = "upload", filename: str = "") -> tuple[dict[str, Any], int]:
        """One request, one file (multipart form): the same path as a resumable upload."""
        begun = await self.begin(actor, ticket_id, material=material, size=size_hint, filename=filename, source=source)
        upload_id = begun["upload_id"]
        try:
            progress = await self.write(actor, upload_id, 0, chunks)
            async with self.domain.unit() as uow:
                upload = await documents.upload_session(uow, actor, upload_id)
                upload.size = progress["offset"]
            return await self.complete(actor, upload_id)
        except BaseException:
            await self._forget(upload_id)
            raise

    async def sweep(self) -> int:
        """Housekeeping: forget unfinished uploads that expired or whose case closed, with their
        staged bytes; remove staging files older than any upload can be, and what crashed or
        cancelled puts left in the object store. Returns how many things were removed."""
        async with self.domain.unit() as uow:
            stale = await documents.stale_uploads(uow)
            for upload_id in stale:
                await documents.forget_upload(uow, upload_id)
        for upload_id in stale:
            await self.pipeline.discard(upload_id)
        now = self.wall_clock()
        lifetime = self.domain.settings.documents.upload_ttl_hours * 3600
        orphans = await self.pipeline.sweep(older_than_seconds=lifetime + STORE_LEFTOVER_SECONDS, now=now)
        try:
            leftovers = await self.store.sweep_leftovers(older_than_seconds=STORE_LEFTOVER_SECONDS, now=now)
        except StorageError as exc:  # the bucket is unreachable: next pass; the other chores still run
            log.warning("object store leftovers not swept: %s", exc.code)
            leftovers = 0
        return len(stale) + orphans + leftovers
