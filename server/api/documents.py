"""Documents: resumable and one-shot uploads, listing, viewing (audited) and review."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from server.api.base import CASE_PARTIES, InvalidInput, actor, int_param, ok, parse, route
from server.api.responses import (
    CaseDocument,
    ChecklistLine,
    FiledDocument,
    ListedDocument,
    OpenedDocument,
    UploadProgress,
)
from server.api.schemas import BeginUpload, Review
from server.domain import documents
from server.domain.errors import DomainError, NotFound
from server.inputs import unstorable
from server.keys import DOMAIN, STORE, UPLOADS
from uploads.images import sniff
from uploads.storage import LocalStore, StorageError

CHUNK = 64 * 1024


@route("POST", "/api/tickets/{ticket_id}/uploads", "开始续传式上传：返回 upload_id 与已收字节", body=BeginUpload,
       roles=CASE_PARTIES, tag="documents", response=UploadProgress)
async def begin(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, BeginUpload)
    return ok(await request.app[UPLOADS].begin(who, int_param(request, "ticket_id"), material=body.material,
                                               size=body.size, filename=body.filename, source=body.source), 201)


@route("GET", "/api/uploads/{upload_id}", "续传进度（断线后从 offset 继续）", roles=CASE_PARTIES, tag="documents",
       response=UploadProgress)
async def status(request: web.Request) -> web.Response:
    who = await actor(request)
    return ok(await request.app[UPLOADS].status(who, request.match_info["upload_id"]))


@route("PUT", "/api/uploads/{upload_id}", "上传一段字节（请求头 Upload-Offset 为起点）", roles=CASE_PARTIES, tag="documents",
       headers={"Upload-Offset": {"type": "integer", "minimum": 0, "description": "本段第一个字节在文件中的位置"}},
       content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
       response=UploadProgress)
async def write(request: web.Request) -> web.Response:
    who = await actor(request)
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
    except ValueError as exc:
        raise InvalidInput([{"field": "Upload-Offset", "problem": "required integer header"}]) from exc
    return ok(await request.app[UPLOADS].write(who, request.match_info["upload_id"], offset,
                                               request.content.iter_chunked(CHUNK)))


@route("POST", "/api/uploads/{upload_id}/complete", "完成上传：校验、处理、入库，返回材料", roles=CASE_PARTIES, tag="documents",
       response=FiledDocument)
async def complete(request: web.Request) -> web.Response:
    who = await actor(request)
    document, status = await request.app[UPLOADS].complete(who, request.match_info["upload_id"])
    return ok(document, status)


@route("POST", "/api/tickets/{ticket_id}/documents",
       "上传材料（multipart：先 material 字段——清单项 id 或 other——再 file 字段；流式，不整体读入内存）",
       roles=CASE_PARTIES, tag="documents", content={"multipart/form-data": {
           "schema": {"type": "object", "required": ["material", "file"], "properties": {
               "material": {"type": "string", "minLength": 1, "maxLength": 20, "description": "清单项 id 或 other"},
               "source": {"type": "string", "enum": ["upload", "capture"], "default": "upload"},
               "file": {"type": "string", "format": "binary", "description": "JPEG、PNG、WebP、HEIC 照片或 PDF"},
           }},
           "encoding": {"file": {"contentType": "application/octet-stream"}},
       }}, response=FiledDocument)
async def upload(request: web.Request) -> web.Response:
    who = await actor(request)
    if not request.content_type.startswith("multipart/"):
        raise DomainError("multipart_required", "请以 multipart/form-data 上传")
    with _readable_multipart():
        reader = await request.multipart()
        fields: dict[str, str] = {}
        while True:
            part = await reader.next()
            if part is None:
                raise InvalidInput([{"field": "file", "problem": "missing"}])
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                break
            if part.name in ("material", "source"):
                fields[part.name] = await _small_field(part)
    if "material" not in fields:
        raise InvalidInput([{"field": "material", "problem": "must come before file"}])
    limit = request.app[DOMAIN].settings.documents.max_file_bytes
    size_hint = min(request.content_length or limit, limit)

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            with _readable_multipart():
                chunk = await part.read_chunk(CHUNK)
            if not chunk:
                return
            yield chunk

    document, status = await request.app[UPLOADS].upload_whole(
        who, int_param(request, "ticket_id"), material=fields["material"], size_hint=size_hint, chunks=chunks(),
        source=fields.get("source", "upload") if fields.get("source") in ("upload", "capture") else "upload",
        filename=part.filename or "",
    )
    return ok(document, status)


@contextmanager
def _readable_multipart() -> Iterator[None]:
    """A body that is not the multipart it says (no boundary, broken part headers) is the
    client's error, not ours."""
    try:
        yield
    except (ValueError, HttpProcessingError) as exc:
        raise DomainError("malformed_multipart", "multipart 内容格式不正确") from exc


async def _small_field(part: BodyPartReader, limit: int = 100) -> str:
    """A form field read up to ``limit`` bytes (a larger one is refused, never read whole)."""
    data = b""
    with _readable_multipart():
        while chunk := await part.read_chunk(limit + 1):
            data += chunk
            if len(data) > limit:
                raise InvalidInput([{"field": part.name or "", "problem": f"at most {limit} bytes"}])
    text = data.decode("utf-8", "replace")
    problem = unstorable(text)
    if problem:
        raise InvalidInput([{"field": part.name or "", "problem": problem}])
    return text


@route("GET", "/api/tickets/{ticket_id}/documents", "本件材料（含短时有效的缩略图地址）", roles=CASE_PARTIES, tag="documents",
       response=list[ListedDocument])
async def list_(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        found = await documents.list_documents(uow, who, int_param(request, "ticket_id"))
    store = request.app[STORE]
    return ok([documents.document_view(d, thumbnail_url=await store.url(d.thumbnail_key)) for d in found])


@route("GET", "/api/documents/{document_id}", "查看材料（每次查看都记入审计日志）", roles=CASE_PARTIES, tag="documents",
       response=OpenedDocument)
async def view(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        d = await documents.view_document(uow, who, int_param(request, "document_id"))
    store = request.app[STORE]
    return ok(documents.document_view(d, urls={
        "viewing": await store.url(d.viewing_key), "thumbnail": await store.url(d.thumbnail_key),
        "original": await store.url(d.original_key),
    }))


@route("POST", "/api/documents/{document_id}/review", "审核材料：通过或退回（退回须写原因）", body=Review,
       roles=("clerk",), tag="documents", response=CaseDocument)
async def review(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, Review)
    async with request.app[DOMAIN].unit() as uow:
        d = await documents.review(uow, who, int_param(request, "document_id"), decision=body.decision, reason=body.reason)
        return ok(documents.document_view(d))


@route("GET", "/api/tickets/{ticket_id}/checklist", "材料清单状态：未提供 / 待审核 / 已通过 / 已退回", roles=CASE_PARTIES, tag="documents",
       response=list[ChecklistLine])
async def checklist(request: web.Request) -> web.Response:
    who = await actor(request)
    ticket_id = int_param(request, "ticket_id")
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await documents.checklist_for(uow, who, ticket_id))


async def serve_object(request: web.Request) -> web.StreamResponse:
    """Local object store: a signed, expiring URL handed out after the access check."""
    store = request.app[STORE]
    if not isinstance(store, LocalStore):
        raise NotFound("not_found", "接口不存在")
    key = request.match_info["key"]
    try:
        expires = int(request.query.get("expires", "0"))
    except ValueError:
        expires = 0
    if not store.verify(key, expires, request.query.get("sig", ""), time.time()):
        raise DomainError("link_expired", "链接无效或已过期，请重新打开")
    try:
        data = await store.read(key)
    except StorageError as exc:  # a genuine link to an object since removed
        raise NotFound("object_not_found", "文件不存在或已被删除") from exc
    return web.Response(body=data, content_type=sniff(data[:64]) or "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"})
