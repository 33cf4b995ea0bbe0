"""Document uploads: domain checks, the streaming pipeline and object storage, in order.

The domain says who may upload what and records documents; ``uploads`` moves and processes
bytes. This module only sequences them (a transaction never stays open while bytes stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from server.domain import documents, hours
from server.domain.context import Actor
from server.domain.errors import DomainError
from server.runtime import Domain
from uploads.service import UploadPipeline, UploadRefused
from uploads.storage import ObjectStore


def refused(exc: UploadRefused) -> DomainError:
    error = DomainError(exc.code, exc.message, **exc.detail)
    error.status = exc.status
    return error


class DocumentUploads:
    def __init__(self, domain: Domain, pipeline: UploadPipeline, store: ObjectStore) -> None:
        self.domain, self.pipeline, self.store = domain, pipeline, store

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
        return self._progress(upload.id, await self.pipeline.offset(upload.id), upload.size, upload.expires_at)

    async def write(self, actor: Actor, upload_id: str, offset: int, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        async with self.domain.unit(write=False) as uow:
            upload = await documents.upload_session(uow, actor, upload_id)
        try:
            reached = await self.pipeline.write(upload.id, offset, upload.size, chunks)
        except UploadRefused as exc:
            raise refused(exc) from exc
        return self._progress(upload.id, reached, upload.size)

    async def complete(self, actor: Actor, upload_id: str) -> tuple[dict[str, Any], bool]:
        """Process and file the upload; (document, True) when it is a file the case already has."""
        async with self.domain.unit(write=False) as uow:
            upload = await documents.upload_session(uow, actor, upload_id)
            item = await documents.item_name(uow, upload.ticket_id)
        reached = await self.pipeline.offset(upload.id)
        if reached != upload.size:
            raise DomainError("upload_incomplete", f"还差 {upload.size - reached} 字节未上传", offset=reached)
        async with self.domain.unit(write=False) as uow:
            existing = {d.sha256: d for d in await documents.list_documents(uow, actor, upload.ticket_id)}
        today = hours.local_day(self.domain.settings.queue, self.domain.clock.now())
        watermark = self.domain.settings.documents.watermark.format(item=item, date=today.isoformat())
        try:
            result = await self.pipeline.finish(upload.id, watermark=watermark, known_sha256=set(existing))
        except UploadRefused as exc:
            async with self.domain.unit() as uow:
                await documents.forget_upload(uow, upload.id)
            raise refused(exc) from exc
        if isinstance(result, str):
            async with self.domain.unit() as uow:
                await documents.forget_upload(uow, upload.id)
            return documents.document_view(existing[result], duplicate=True), True
        try:
            async with self.domain.unit() as uow:
                document = await documents.file_document(uow, actor, upload.id, result)
        except BaseException:
            for key in (result.original_key, result.viewing_key, result.thumbnail_key):
                await self.store.delete(key)
            raise
        return documents.document_view(document), False

    async def upload_whole(self, actor: Actor, ticket_id: int, *, material: str, size_hint: int,
                           chunks: AsyncIterator[bytes], source: str = "upload", filename: str = "") -> tuple[dict[str, Any], bool]:
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
            await self.pipeline.discard(upload_id)
            raise

    async def urls(self, document: dict[str, Any], keys: dict[str, str], expires: int = 300) -> dict[str, str]:
        return {name: await self.store.url(key, expires=expires) for name, key in keys.items()}

    async def sweep(self) -> int:
        """Forget expired, unfinished uploads and their staged bytes."""
        async with self.domain.unit() as uow:
            expired = await documents.expired_uploads(uow)
            for upload_id in expired:
                await documents.forget_upload(uow, upload_id)
        for upload_id in expired:
            await self.pipeline.discard(upload_id)
        return len(expired)
