"""材料 — documents of a case, the materials checklist, and who may see or judge them.

The rules: only the case's participants (its extension point's worker, the clerk of its
window, experts who accepted an invitation to it) upload and see documents; uploads happen while the ticket is called or in service,
each filed under a line of the item's checklist or "other"; the clerk accepts or rejects
(with a reason); every view is audited; a case cannot be completed on the spot while a required
material is missing, unreviewed or rejected.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from server.domain import audit, bundles
from server.domain.calls import call_is_open, role_in_case
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from server.events import Audience
from server.inputs import parse_id
from server.models import Document, Material, Role, ServiceItem, Ticket, TicketStatus, UploadSession
from uploads.service import StoredFile

OTHER = "other"
STATE_NAMES = {"missing": "未提供", "provided": "待审核", "accepted": "已通过", "rejected": "已退回"}


async def _ticket_for(uow: Uow, actor: Actor, ticket_id: int) -> tuple[Ticket, str]:
    ticket = await uow.session.get(Ticket, ticket_id)
    role = await role_in_case(uow, actor, ticket) if ticket is not None else None
    if ticket is None or role is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    return ticket, role


def _audience(ticket: Ticket) -> Audience:
    users = tuple(u for u in (ticket.worker_id, ticket.clerk_id) if u)
    return Audience(users=users, call_of_ticket=ticket.id)


async def _material(uow: Uow, ticket: Ticket, material: str) -> tuple[int | None, str]:
    if material == OTHER:
        return None, "其他材料"
    material_id = parse_id(material)
    if material_id is None:
        raise Invalid("unknown_material", "材料项不存在", material=material)
    row = await uow.session.get(Material, material_id)
    if ticket.bundle_id is not None:  # 一事联办: a line of any of the case's items
        ours = row is not None and row.situation_id is None and row.item_id in {
            ci.item_id for ci in await bundles.items_of_case(uow, ticket.id)}
    else:
        ours = row is not None and row.item_id == ticket.item_id and row.situation_id == ticket.situation_id
    if row is None or not ours:
        raise Invalid("unknown_material", "该事项的材料清单中没有这一项", material=material)
    return row.id, row.name


async def _lock(uow: Uow, ticket_id: int) -> Ticket:
    """The case row, read afresh and, on PostgreSQL, locked until commit: the uploads of one case
    are begun and filed one at a time (SQLite has a single writer already)."""
    stmt = select(Ticket).where(Ticket.id == ticket_id).execution_options(populate_existing=True)
    if uow.dialect == "postgresql":
        stmt = stmt.with_for_update()
    return (await uow.session.scalars(stmt)).one()


async def begin_upload(
    uow: Uow, actor: Actor, ticket_id: int, *, material: str, size: int, filename: str = "", source: str = "upload"
) -> UploadSession:
    """Open an upload: checks who, when, which checklist line, and the limits, before any byte.

    Unfinished uploads hold disk, so a case has at most ``max_open_uploads_per_case`` of them,
    declaring at most ``max_staged_bytes_per_case`` together (counted under the case's lock).
    """
    ticket, role = await _ticket_for(uow, actor, ticket_id)
    if role is None:
        raise Forbidden("role_forbidden", "只有办件双方和受邀专家可以上传材料")
    ticket = await _lock(uow, ticket.id)
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "只能在办理过程中上传材料", status=ticket.status.value)
    rules = uow.documents
    if size <= 0:
        raise Invalid("empty_file", "文件是空的")
    if size > rules.max_file_bytes:
        raise TooLarge("file_too_large", f"文件超过 {rules.max_file_bytes // (1024 * 1024)} MB 上限",
                       limit=rules.max_file_bytes)
    count = await uow.session.scalar(select(func.count(Document.id)).where(Document.ticket_id == ticket.id))
    if int(count or 0) >= rules.max_files_per_case:
        raise Conflict("too_many_files", f"每件最多 {rules.max_files_per_case} 份材料", limit=rules.max_files_per_case)
    now = uow.clock.now()
    unfinished, staged = (await uow.session.execute(
        select(func.count(UploadSession.id), func.coalesce(func.sum(UploadSession.size), 0)).where(
            UploadSession.ticket_id == ticket.id, UploadSession.document_id.is_(None), UploadSession.expires_at > now)
    )).one()
    if int(unfinished) >= rules.max_open_uploads_per_case:
        raise Conflict("too_many_uploads",
                       f"本件已有 {int(unfinished)} 个上传尚未完成（最多同时 {rules.max_open_uploads_per_case} 个），请等其完成后再上传",
                       limit=rules.max_open_uploads_per_case)
    if int(staged) + size > rules.max_staged_bytes_per_case:
        raise TooLarge("staged_too_large",
                       f"本件未完成的上传已达 {_mb(int(staged))} MB，再加这个文件将超过 {_mb(rules.max_staged_bytes_per_case)} MB 上限，"
                       "请等其完成后再上传", limit=rules.max_staged_bytes_per_case, staged=int(staged))
    material_id, material_name = await _material(uow, ticket, material)
    upload = UploadSession(
        id=secrets.token_urlsafe(18), ticket_id=ticket.id, material_id=material_id, material_name=material_name,
        source=source, uploader_id=actor.user_id, size=size, received=0, filename=filename[:200],
        created_at=now, expires_at=now + timedelta(hours=rules.upload_ttl_hours),
    )
    uow.session.add(upload)
    audit.record(uow, actor, "document.upload_begin", "ticket", ticket.id, upload_id=upload.id, size=size,
                 material=material_name)
    return upload


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}" if size % (1024 * 1024) == 0 else f"{size / (1024 * 1024):.1f}"


async def upload_session(uow: Uow, actor: Actor, upload_id: str) -> UploadSession:
    """The actor's own upload; an unfinished one only until it expires (a filed one stays)."""
    upload = await uow.session.get(UploadSession, upload_id)
    if upload is None or upload.uploader_id != actor.user_id:
        raise NotFound("upload_not_found", "上传不存在或已过期", upload_id=upload_id)
    if upload.document_id is None and upload.expires_at <= uow.clock.now():
        raise Conflict("upload_expired", "上传已过期，请重新上传")
    return upload


async def _case_of(uow: Uow, actor: Actor, upload: UploadSession, *, lock: bool = False) -> Ticket:
    """The upload's case, still open and still one the uploader has a part in."""
    ticket = await _lock(uow, upload.ticket_id) if lock else await uow.session.get(Ticket, upload.ticket_id)
    role = await role_in_case(uow, actor, ticket) if ticket is not None else None
    if ticket is None or role is None or not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号已不在办理中（或您已不在本件中），这次上传已作废",
                       status=ticket.status.value if ticket is not None else None)
    return ticket


async def open_upload(uow: Uow, actor: Actor, upload_id: str) -> UploadSession:
    """An upload that may still take bytes or be completed: unfinished, unexpired, its case open
    and the uploader still in it. ``call_not_open`` means the upload is dead: forget it."""
    upload = await upload_session(uow, actor, upload_id)
    if upload.document_id is not None:
        raise Conflict("upload_filed", "该文件已上传完成", document_id=upload.document_id)
    await _case_of(uow, actor, upload)
    return upload


async def filed_document(uow: Uow, actor: Actor, upload: UploadSession) -> dict[str, Any] | None:
    """What a filed upload became (for a ``complete`` sent again), or None while unfinished."""
    if upload.document_id is None:
        return None
    await _ticket_for(uow, actor, upload.ticket_id)  # still a party: may still see the document
    document = await uow.session.get(Document, upload.document_id)
    if document is None:
        raise NotFound("document_not_found", "材料不存在", document_id=upload.document_id)
    return filed_view(upload, document)


def filed_view(upload: UploadSession, document: Document) -> dict[str, Any]:
    """``received`` stays 0 when the upload turned out to be a file the case already had."""
    return document_view(document, duplicate=True) if upload.received == 0 else document_view(document)


async def stale_uploads(uow: Uow) -> list[str]:
    """Unfinished uploads to forget: expired, or of a case no longer open (their bytes can never
    be filed)."""
    rows = await uow.session.scalars(
        select(UploadSession.id).join(Ticket, Ticket.id == UploadSession.ticket_id).where(
            UploadSession.document_id.is_(None),
            or_(UploadSession.expires_at <= uow.clock.now(), Ticket.status.not_in(TicketStatus.in_call_states())),
        )
    )
    return list(rows.all())


async def forget_upload(uow: Uow, upload_id: str) -> None:
    upload = await uow.session.get(UploadSession, upload_id)
    if upload is not None and upload.document_id is None:
        await uow.session.delete(upload)


async def duplicate_of(uow: Uow, ticket_id: int, sha256: str) -> Document | None:
    found: Document | None = (
        await uow.session.scalars(select(Document).where(Document.ticket_id == ticket_id, Document.sha256 == sha256))
    ).first()
    return found


async def _claim(uow: Uow, actor: Actor, upload_id: str) -> tuple[UploadSession, Ticket, Document | None]:
    """The upload under its case's lock, read afresh: with what it was already filed as, if anything."""
    upload = await upload_session(uow, actor, upload_id)
    ticket = await _case_of(uow, actor, upload, lock=True)
    await uow.session.refresh(upload)
    filed = await uow.session.get(Document, upload.document_id) if upload.document_id is not None else None
    return upload, ticket, filed


async def file_document(uow: Uow, actor: Actor, upload_id: str, stored: StoredFile) -> tuple[Document, bool]:
    """Record a processed, stored upload as a document of the case and tell the call.

    Returns (document, True); (the document it was already filed as, False) when another
    ``complete`` of the same upload got there first — the caller then drops what it stored.
    Refused (``call_not_open``) when the case closed or the uploader left it meanwhile.
    """
    upload, ticket, filed = await _claim(uow, actor, upload_id)
    if filed is not None:
        return filed, False
    rules = uow.documents
    count = await uow.session.scalar(select(func.count(Document.id)).where(Document.ticket_id == ticket.id))
    if int(count or 0) >= rules.max_files_per_case:
        raise Conflict("too_many_files", f"每件最多 {rules.max_files_per_case} 份材料", limit=rules.max_files_per_case)
    document = Document(
        ticket_id=ticket.id, material_id=upload.material_id, material_name=upload.material_name, source=upload.source,
        uploader_id=actor.user_id, uploaded_at=uow.clock.now(), content_type=stored.content_type, size=stored.size,
        width=stored.width, height=stored.height, page_count=stored.page_count, sha256=stored.sha256,
        original_key=stored.original_key, viewing_key=stored.viewing_key, thumbnail_key=stored.thumbnail_key,
        status="provided",
    )
    uow.session.add(document)
    await uow.session.flush()
    upload.document_id = document.id
    upload.received = upload.size
    audit.record(uow, actor, "document.upload", "document", document.id, ticket_id=ticket.id,
                 material=upload.material_name, sha256=stored.sha256, size=stored.size)
    uow.emit("document.added", document_view(document), _audience(ticket))
    return document, True


async def file_duplicate(uow: Uow, actor: Actor, upload_id: str, document_id: int) -> dict[str, Any]:
    """The upload was a file the case already has: it stands for that document from now on, so
    a repeated ``complete`` answers the same."""
    upload, _, filed = await _claim(uow, actor, upload_id)
    if filed is None:
        filed = await uow.session.get(Document, document_id)
        if filed is None:
            raise NotFound("document_not_found", "材料不存在", document_id=document_id)
        upload.document_id, upload.received = filed.id, 0
    return filed_view(upload, filed)


async def review(uow: Uow, actor: Actor, document_id: int, *, decision: str, reason: str = "") -> Document:
    """审核 — the clerk accepts a material or sends it back with a reason."""
    document = await uow.session.get(Document, document_id)
    ticket = await uow.session.get(Ticket, document.ticket_id) if document else None
    role = await role_in_case(uow, actor, ticket) if ticket is not None else None
    if document is None or ticket is None or role is None:
        raise NotFound("document_not_found", "材料不存在", document_id=document_id)
    if role is not Role.clerk:
        raise Forbidden("role_forbidden", "材料由云窗口工作人员审核")
    if decision not in ("accepted", "rejected"):
        raise Invalid("unknown_decision", "审核结果只能是通过或退回")
    if decision == "rejected" and not reason.strip():
        raise Invalid("reason_required", "退回材料请写明原因")
    document.status, document.review_reason = decision, reason.strip() or None
    document.reviewed_by_id, document.reviewed_at = actor.user_id, uow.clock.now()
    audit.record(uow, actor, f"document.{decision}", "document", document.id, ticket_id=ticket.id, reason=reason)
    uow.emit("document.reviewed", document_view(document), _audience(ticket))
    return document


async def list_documents(uow: Uow, actor: Actor, ticket_id: int) -> list[Document]:
    ticket, _ = await _ticket_for(uow, actor, ticket_id)
    rows = await uow.session.scalars(select(Document).where(Document.ticket_id == ticket.id).order_by(Document.id))
    documents = list(rows.all())
    audit.record(uow, actor, "document.list", "ticket", ticket.id, count=len(documents))
    return documents


async def view_document(uow: Uow, actor: Actor, document_id: int, *, variant: str = "viewing") -> Document:
    """Every view of a document, by anyone, is written to the audit log."""
    document = await uow.session.get(Document, document_id)
    ticket = await uow.session.get(Ticket, document.ticket_id) if document else None
    role = await role_in_case(uow, actor, ticket) if ticket is not None else None
    if document is None or ticket is None or role is None:
        raise NotFound("document_not_found", "材料不存在", document_id=document_id)
    audit.record(uow, actor, "document.view", "document", document.id, ticket_id=ticket.id, variant=variant)
    return document


async def case_materials(uow: Uow, ticket: Ticket) -> list[Material]:
    """The case's checklist: its situation's lines when it has one, else the item's general ones."""
    owner = (Material.situation_id == ticket.situation_id) if ticket.situation_id is not None \
        else Material.situation_id.is_(None)
    return list((await uow.session.scalars(
        select(Material).where(Material.item_id == ticket.item_id, owner).order_by(Material.position))).all())


async def checklist(uow: Uow, ticket_id: int) -> list[dict[str, Any]]:
    """Each checklist line with its state: missing → provided → accepted / rejected."""
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    wanted: list[tuple[int, str, bool, str, set[int], dict[str, Any]]]
    if ticket.bundle_id is not None:  # 一事联办: the merged checklist, a shared material asked once
        merged = await bundles.case_checklist(uow, ticket.id)
        wanted = [(line.material_ids[0], line.name, line.required, line.note, set(line.material_ids),
                   {"item_ids": line.item_ids, "issued_by": line.issued_by}) for line in merged]
    else:
        wanted = [(m.id, m.name, m.required, m.note, {m.id}, {}) for m in await case_materials(uow, ticket)]
    documents = (await uow.session.scalars(select(Document).where(Document.ticket_id == ticket.id))).all()
    lines = []
    for material_id, name, required, note, ids, extra in wanted:
        mine = [d for d in documents if d.material_id in ids]
        statuses = {d.status for d in mine}
        state = next((s for s in ("accepted", "provided", "rejected") if s in statuses), "missing")
        rejected = [d for d in mine if d.status == "rejected"]
        lines.append({
            "material_id": material_id, "name": name, "required": required, "note": note, "state": state,
            "state_name": STATE_NAMES[state], "document_ids": [d.id for d in mine],
            "reason": rejected[-1].review_reason if state == "rejected" else None, **extra,
        })
    others = [d.id for d in documents if d.material_id is None]
    if others:
        lines.append({"material_id": None, "name": "其他材料", "required": False, "note": "", "state": "provided",
                      "state_name": STATE_NAMES["provided"], "document_ids": others, "reason": None})
    return lines


async def checklist_for(uow: Uow, actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The checklist as a case participant sees it (the same access rule as the documents)."""
    await _ticket_for(uow, actor, ticket_id)
    return await checklist(uow, ticket_id)


async def blocking_materials(uow: Uow, ticket_id: int) -> list[dict[str, Any]]:
    """Required lines that stop completing the case on the spot."""
    return [line for line in await checklist(uow, ticket_id) if line["required"] and line["state"] != "accepted"]


async def item_name(uow: Uow, ticket_id: int) -> str:
    name = await uow.session.scalar(
        select(ServiceItem.name).join(Ticket, Ticket.item_id == ServiceItem.id).where(Ticket.id == ticket_id)
    )
    return str(name or "")


def document_view(d: Document, **extra: Any) -> dict[str, Any]:
    view = {
        "id": d.id, "ticket_id": d.ticket_id, "material_id": d.material_id, "material_name": d.material_name,
        "source": d.source, "uploader_id": d.uploader_id, "uploaded_at": d.uploaded_at.isoformat(),
        "content_type": d.content_type, "size": d.size, "width": d.width, "height": d.height,
        "page_count": d.page_count, "sha256": d.sha256, "status": d.status, "review_reason": d.review_reason,
        "reviewed_by_id": d.reviewed_by_id, "reviewed_at": d.reviewed_at.isoformat() if d.reviewed_at else None,
    }
    view.update(extra)
    return view


async def request_capture(uow: Uow, actor: Actor, ticket_id: int, material: str) -> dict[str, Any]:
    """远程拍照 — the clerk asks the extension point's camera for a still of one checklist line."""
    ticket, role = await _ticket_for(uow, actor, ticket_id)
    if role is not Role.clerk:
        raise Forbidden("role_forbidden", "只有云窗口工作人员可以发起远程拍照")
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号不在办理中", status=ticket.status.value)
    material_id, material_name = await _material(uow, ticket, material)
    request_id = secrets.token_urlsafe(9)
    audit.record(uow, actor, "document.capture_request", "ticket", ticket.id, request_id=request_id,
                 material=material_name)
    return {"ticket_id": ticket.id, "request_id": request_id, "material": material,
            "material_id": material_id, "material_name": material_name}
