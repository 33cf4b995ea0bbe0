"""审计日志 — every state change and every privileged read, in a tamper-evident chain.

Each row carries ``prev_hash`` (the hash of the row before it) and ``hash``, the SHA-256 of
its canonical form (:func:`canonical`), which includes ``prev_hash``: editing, deleting or
moving a row breaks the chain at that row, and :func:`verify` names it.

:func:`record` only queues a row on the unit of work's session. The rows get their place in
the chain when that transaction commits (:func:`_seal`, a ``before_commit`` hook): the
transaction's own changes are flushed first, then the one-row ``audit_chain_head`` is updated,
which is the chain's lock on every backend (a row lock on PostgreSQL, across nodes; SQLite's
database write lock, across processes). So the lock is held only from the last statement to
the commit, and chain order is commit order even where ids are handed out in another order.

The module offers no way to change or delete a row, and none exists: the model refuses ORM
updates and deletes (``server.models.AppendOnly``) and triggers in the database refuse
``UPDATE``/``DELETE`` (and ``TRUNCATE`` on PostgreSQL) on ``audit_log`` (migration 0008).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.orm import Session

from server.domain.context import Actor, Uow
from server.domain.errors import Invalid
from server.models import AuditChainHead, AuditEntry, Role

GENESIS = "0" * 64  # the prev_hash of row 1
_PENDING = "yunbang.audit.pending"
_BATCH = 2000
_ENTRY = cast(Table, AuditEntry.__table__)
_HEAD = cast(Table, AuditChainHead.__table__)


def record(
    uow: Uow,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: object = "",
    **detail: Any,
) -> None:
    """Queue one audit row; it is written, chained, with the transaction's commit."""
    entry = {
        "at": uow.clock.now(),
        "actor_id": actor.user_id or None,
        "actor_name": actor.username,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "ip": actor.ip,
        # What is stored is what is hashed: JSON in, JSON out (tuples become lists, and so on).
        "detail": json.loads(json.dumps(detail, allow_nan=False)),
    }
    uow.session.info.setdefault(_PENDING, []).append(entry)


def canonical(row: Mapping[Any, Any]) -> bytes:
    """The bytes a row's hash covers: a JSON object with sorted keys, no whitespace, UTF-8.

    Keys: seq, at (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``), actor_id (null for the system),
    actor_name, action, target_type, target_id, ip, detail, prev_hash. ``id`` is not
    covered: it is storage, ``seq`` is the row's place.
    """
    doc = {
        "seq": row["seq"],
        "at": row["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": row["actor_id"],
        "actor_name": row["actor_name"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "ip": row["ip"],
        "detail": row["detail"],
        "prev_hash": row["prev_hash"],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def row_hash(row: Mapping[Any, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _seal(session: Session) -> None:
    """Write the transaction's queued rows at the end of the chain, just before it commits."""
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # the transaction's own changes (and their row locks) before the chain lock
    conn = session.connection()
    head = conn.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + len(pending))
        .returning(_HEAD.c.seq, _HEAD.c.hash)
    ).one_or_none()
    if head is None:
        raise RuntimeError("audit chain head missing: run `yunbang migrate`")
    seq, prev = head.seq - len(pending), head.hash
    for entry in pending:
        seq += 1
        entry["seq"], entry["prev_hash"] = seq, prev
        prev = entry["hash"] = row_hash(entry)
    conn.execute(insert(_ENTRY), pending)
    conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(hash=prev))


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


# Every session: a row recorded anywhere is chained wherever its transaction commits (the
# app's units, the CLI's, the seed's); a rolled-back transaction takes its rows with it.
event.listen(Session, "before_commit", _seal)
event.listen(Session, "after_rollback", _forget)


async def query(
    uow: Uow,
    actor: Actor,
    *,
    action: str | None = None,
    actor_id: int | None = None,
    actor_name: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest entries first; ``before_id`` pages back (pass the last id seen)."""
    actor.require(Role.auditor)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if actor_name:
        stmt = stmt.where(AuditEntry.actor_name == actor_name)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    rows = (await uow.session.scalars(stmt)).all()
    filters = {"action": action, "actor_id": actor_id, "actor": actor_name, "target_type": target_type,
               "target_id": target_id, "since": since.isoformat() if since else None,
               "until": until.isoformat() if until else None, "before_id": before_id}
    record(uow, actor, "audit.read", "audit", "", filters={k: v for k, v in filters.items() if v is not None},
           count=len(rows))
    return [
        {
            "id": r.id,
            "seq": r.seq,
            "at": r.at.isoformat(),
            "actor_id": r.actor_id,
            "actor": r.actor_name,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "ip": r.ip,
            "detail": r.detail,
            "hash": r.hash,
        }
        for r in rows
    ]


@dataclass(frozen=True)
class Break:
    """Where the chain first fails: ``kind`` is edited, deleted, reordered, truncated or anchor."""

    kind: str
    seq: int
    id: int | None
    message: str


@dataclass(frozen=True)
class Verdict:
    rows: int  # rows found sound, in chain order, before the first break (all of them if none)
    head_seq: int
    head_hash: str
    problem: Break | None = None
    anchors: tuple[tuple[int, str], ...] = field(default=())

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def message(self) -> str:
        if self.problem is not None:
            return self.problem.message
        return f"审计日志完整 / audit trail intact: {self.rows} rows"

    def view(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "anchors_checked": len(self.anchors),
            "problem": None if self.problem is None else {
                "kind": self.problem.kind, "seq": self.problem.seq, "id": self.problem.id,
                "message": self.problem.message,
            },
            "message": self.message,
        }


def _check(row: Mapping[Any, Any], seq: int, prev: str) -> Break | None:
    """Row ``row`` is read where row ``seq`` (whose predecessor's hash is ``prev``) should be."""
    at = f"第 {row['seq']} 条审计记录（id {row['id']}）"
    where = f"audit row seq {row['seq']} (id {row['id']})"
    if row["seq"] > seq:
        gap = f"{seq}" if row["seq"] == seq + 1 else f"{seq}–{row['seq'] - 1}"
        return Break("deleted", row["seq"], row["id"],
                     f"{at}之前的第 {gap} 条被删除 / audit rows seq {gap} before {where} were deleted")
    follows = row["prev_hash"] == prev
    if row_hash(row) != row["hash"]:
        if follows:
            return Break("edited", row["seq"], row["id"],
                         f"{at}被改动：内容与哈希不符 / {where} was edited: its content does not match its hash")
        return Break("reordered", row["seq"], row["id"],
                     f"{at}不在原位：顺序被调换，或其前的记录被删除后重新编号 / {where} is out of place: "
                     "rows were reordered, or rows before it deleted and the rest renumbered")
    if not follows:
        return Break("reordered", row["seq"], row["id"],
                     f"{at}不接续第 {row['seq'] - 1} 条：顺序被调换，或前一条连同哈希被改写 / {where} does not "
                     f"follow row seq {row['seq'] - 1}: rows were reordered, or the row before it rewritten "
                     "with a new hash")
    return None


async def verify(uow: Uow, actor: Actor, anchors: Mapping[int, str] | None = None) -> Verdict:
    """Walk the chain from row 1 to the head and name the first row that breaks it.

    ``anchors`` maps a seq to the hash an operator saved elsewhere (``yunbang audit head``):
    a chain rewritten from its start (hashes recomputed) or cut short, which the chain alone
    cannot show, fails there. Reads only; on a running system rows committed after the head
    was read are left for the next run.
    """
    actor.require(Role.auditor)
    wanted = dict(anchors or {})
    pinned = tuple(sorted(wanted.items()))
    head = (await uow.session.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1))).one_or_none()
    if head is None:
        return Verdict(0, 0, "", Break("truncated", 0, None,
                                       "审计链头缺失 / the audit chain head is missing"), pinned)
    seq, prev, rows = 1, GENESIS, 0
    while True:
        batch = (await uow.session.execute(
            select(_ENTRY).where(_ENTRY.c.seq >= seq, _ENTRY.c.seq <= head.seq)
            .order_by(_ENTRY.c.seq).limit(_BATCH)
        )).mappings().all()
        for row in batch:
            problem = _check(row, seq, prev)
            if problem is None and row["seq"] in wanted and wanted[row["seq"]] != row["hash"]:
                problem = Break("anchor", row["seq"], row["id"],
                                f"第 {row['seq']} 条审计记录与保存的锚点哈希不符：日志被整体改写 / audit row seq "
                                f"{row['seq']} (id {row['id']}) does not match its anchored hash: the chain "
                                "was rewritten")
            if problem is not None:
                return Verdict(rows, head.seq, head.hash, problem, pinned)
            seq, prev, rows = row["seq"] + 1, row["hash"], rows + 1
        if len(batch) < _BATCH:
            break
    last = seq - 1
    missing = [s for s in wanted if s > last]
    if last < head.seq or missing:
        end = max([head.seq, *missing])
        gap = f"{last + 1}" if end == last + 1 else f"{last + 1}–{end}"
        return Verdict(rows, head.seq, head.hash, Break(
            "truncated", last + 1, None,
            f"审计日志末尾的第 {gap} 条被删除 / audit rows seq {gap} at the end were deleted "
            f"(the chain head or an anchor records seq {end})"), pinned)
    if prev != head.hash:
        return Verdict(rows, head.seq, head.hash, Break(
            "truncated", last, None,
            f"最后一条（第 {last} 条）与链头不符：末尾被改写 / the last row (seq {last}) does not match "
            "the chain head: the end of the log was rewritten"), pinned)
    return Verdict(rows, head.seq, head.hash, None, pinned)


def parse_anchor(raw: str) -> tuple[int, str]:
    """``seq:hash`` as ``yunbang audit head`` prints it."""
    seq, _, digest = raw.strip().partition(":")
    digest = digest.lower()
    if not seq.isdigit() or len(digest) != 64 or not set(digest) <= set("0123456789abcdef"):
        raise Invalid("anchor_invalid", "锚点格式应为 序号:哈希（yunbang audit head 的输出）", anchor=raw[:80])
    return int(seq), digest


async def head(uow: Uow, actor: Actor) -> dict[str, Any]:
    """The chain's last link, to save somewhere else as an anchor (``verify --anchor``)."""
    actor.require(Role.auditor)
    row = (await uow.session.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1))).one_or_none()
    return {"seq": row.seq if row else 0, "hash": row.hash if row else "", "at": uow.clock.now().isoformat()}
