"""保存期限 — what a closed case keeps once its retention period is over.

``YUNBANG_RETENTION_DAYS`` after a case closed (completed, no-show or cancelled), its documents
are deleted from the object store and the database, and the resident's personal data is
anonymised: the name becomes 已匿名, the sealed numbers, their search hash and masked forms, the
note, the rating's comment, the result note and the case's chat text are removed. What the centre
is judged by stays: the ticket's number, item, queue, times, status, result and score, the
experts' opinions, and the audit trail (never deleted by retention). Each purge is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from server.domain import audit
from server.domain.context import SYSTEM, Actor, Uow
from server.models import CaseItem, CaseMessage, Document, Ticket, TicketStatus, UploadSession

CLOSED = (TicketStatus.completed, TicketStatus.no_show, TicketStatus.cancelled)
ANONYMOUS = "已匿名"
REMOVED = "（已按保存期限删除）"


@dataclass(frozen=True)
class Due:
    """A closed case past its retention period, with the objects to delete."""

    ticket_id: int
    number: str
    finished_at: datetime
    documents: int
    object_keys: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "number": self.number, "finished_at": self.finished_at.isoformat(),
                "documents": self.documents}


def cutoff(uow: Uow, days: float) -> datetime:
    return uow.clock.now() - timedelta(days=days)


async def due(uow: Uow, days: float, *, limit: int = 200) -> list[Due]:
    """Closed cases whose retention ran out and that still hold personal data, oldest first."""
    tickets = (await uow.session.execute(
        select(Ticket.id, Ticket.number, Ticket.finished_at)
        .where(Ticket.status.in_(CLOSED), Ticket.finished_at < cutoff(uow, days), Ticket.purged_at.is_(None))
        .order_by(Ticket.finished_at, Ticket.id)
        .limit(limit)
    )).all()
    if not tickets:
        return []
    documents: dict[int, list[str]] = {}
    for d in (await uow.session.scalars(
        select(Document).where(Document.ticket_id.in_([t.id for t in tickets])).order_by(Document.id)
    )).all():
        documents.setdefault(d.ticket_id, []).extend((d.original_key, d.viewing_key, d.thumbnail_key))
    return [Due(t.id, t.number, t.finished_at, len(documents.get(t.id, [])) // 3, tuple(documents.get(t.id, [])))
            for t in tickets]


async def purge(uow: Uow, case: Due, actor: Actor = SYSTEM) -> None:
    """Anonymise one case whose objects are already deleted (the caller deletes them first, so a
    failure half way leaves nothing personal behind, only work for the next pass)."""
    ticket = await uow.session.get(Ticket, case.ticket_id, with_for_update=True)
    if ticket is None or ticket.purged_at is not None:
        return
    messages = await uow.session.scalar(select(func.count(CaseMessage.id)).where(CaseMessage.ticket_id == ticket.id))
    await uow.session.execute(delete(UploadSession).where(UploadSession.ticket_id == ticket.id))
    await uow.session.execute(delete(Document).where(Document.ticket_id == ticket.id))
    await uow.session.execute(update(CaseMessage).where(CaseMessage.ticket_id == ticket.id).values(text=REMOVED))
    await uow.session.execute(update(CaseItem).where(CaseItem.ticket_id == ticket.id).values(note=""))  # 一事联办
    ticket.resident = {"name": ANONYMOUS}
    ticket.resident_sealed = None
    ticket.id_number_hash = None
    ticket.rating_comment = None
    ticket.result_note = None
    ticket.purged_at = uow.clock.now()
    audit.record(uow, actor, "retention.purge", "ticket", ticket.id, number=ticket.number,
                 finished_at=case.finished_at.isoformat(), documents=case.documents, messages=int(messages or 0))
