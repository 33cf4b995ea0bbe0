"""证照到期提醒 — licences and certificates about to expire are texted to their holders so they
renew in time (docs/reminders.md).

- An administrator keeps the certificate types: each names the service item that renews it and
  its reminder rules, days before expiry (e.g. 90, 30, 7).
- The registry is imported from a CSV or XLSX file (Chinese headers: 持证人, 手机号, 身份证号
  (optional), 证照类型, 证照编号, 到期日期). Each row is checked on its own: the good rows are
  imported (upserted by type and number), the bad ones are reported with their row number and
  reason, and change nothing. A missing column or an unreadable file imports nothing.
- The monitor scans at the domain clock's today (between 09:00 and 20:00 local time): a
  certificate is due for the tightest rule whose day has come (imported 20 days before expiry
  with rules 90/30/7: the 30-day one; the 90-day one is never sent). One SMS per certificate,
  expiry and rule, ever: a unique row per (certificate, expiry, rule) and the outbox's dedupe key,
  so two nodes scanning at once send it once. Not reminded: a type stopped, a holder who opted
  out, a certificate renewed, or one whose expiry has passed.
- The SMS carries a link (``/app/r/<token>``, only its hash kept) that opens without login: the
  certificate (masked), the renewing item's materials, 视频办理 / 预约办理, and 不再提醒 (opt-out).
- Renewal: a case for the renewing item completed as ``done`` for the same person (the ID
  number's keyed hash, or the phone's) while the certificate is within its reminder window (up
  to ``RENEWAL_DAYS_AFTER_EXPIRY`` after expiry); or an administrator marks it; or a re-import
  with a later expiry (that begins the next round of reminders).
- The report counts reminders sent per type, rule and month, and the rounds of reminders that a
  renewal followed within N days of a reminder.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.domain import audit, catalog, hours, notify, tables
from server.domain.context import SYSTEM, Actor, Uow
from server.domain.errors import Conflict, Gone, Invalid, NotFound
from server.domain.personal import mask_id_number, mask_name, mask_phone, normalise_id_number
from server.domain.tables import Cell, TableRow
from server.models import (
    Certificate,
    CertificateReminder,
    CertificateType,
    Department,
    Role,
    ServiceItem,
    Ticket,
    User,
)

LINK_PATH = "/app/r/"  # the holder's page, mobile first
LINK_DAYS_AFTER_EXPIRY = 30  # the link still opens a month after the expiry it reminded of
SEND_FROM_HOUR, SEND_UNTIL_HOUR = 9, 20  # local time: no reminder texted at night
MAX_RULE_DAYS = 366
MAX_RULES = 6
RENEWAL_DAYS_AFTER_EXPIRY = 90  # a case completed this long after expiry still renews it
MAX_IMPORT_BYTES = tables.MAX_IMPORT_BYTES
KIND = "certificate_reminder"
EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)  # a report's period; dates past these overflow

# The import's columns: the header names each is known by (the first is the one we write).
COLUMNS: dict[str, tuple[str, ...]] = {
    "holder": ("持证人", "持证人姓名", "姓名", "单位名称", "holder"),
    "phone": ("手机号", "手机号码", "联系电话", "phone"),
    "id_number": ("身份证号", "身份证号码", "证件号码", "id_number"),
    "type": ("证照类型", "证照名称", "type"),
    "number": ("证照编号", "证号", "编号", "number"),
    "expires_on": ("到期日期", "有效期至", "到期日", "expires_on"),
}
REQUIRED = ("holder", "phone", "type", "number", "expires_on")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def id_number_valid(value: str) -> bool:
    """居民身份证号码 (GB 11643-1999): 17 digits and a check character."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    return ID_CHECK[sum(int(c) * w for c, w in zip(value[:17], ID_WEIGHTS, strict=True)) % 11] == value[17]


def mask_number(value: str) -> str:
    """A certificate's number on a page anyone holding the link may open: JY****2345."""
    if len(value) <= 6:
        return value[:1] + "*" * (len(value) - 1)
    return value[:2] + "*" * (len(value) - 6) + value[-4:]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _phone_hash(uow: Uow, phone: str) -> str:
    return uow.sealer.search_hash(f"phone:{phone}")  # as residents' accounts are found


def _today(uow: Uow) -> date:
    return hours.local_day(uow.rules, uow.clock.now())


# --- types and their rules ------------------------------------------------------------------


def reminder_rules(days: Sequence[int]) -> list[int]:
    """The rules, tightest last: distinct days before expiry, 0 (the day itself) to a year."""
    clean = sorted(set(days), reverse=True)
    if not clean or len(clean) > MAX_RULES or any(d < 0 or d > MAX_RULE_DAYS for d in clean):
        raise Invalid("reminder_days_invalid",
                      f"提醒规则为到期前的天数（0–{MAX_RULE_DAYS}），至少 1 条、至多 {MAX_RULES} 条", days=list(days))
    return clean


def _type_view(t: CertificateType, item: ServiceItem | None, certificates: int) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "item_id": t.item_id, "item_name": item.name if item else "",
            "item_code": item.code if item else "", "reminder_days": list(t.reminder_days), "active": t.active,
            "certificates": certificates}


async def types(uow: Uow, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Role.admin)
    rows = (await uow.session.scalars(select(CertificateType).order_by(CertificateType.id))).all()
    counts = dict((await uow.session.execute(
        select(Certificate.type_id, func.count()).group_by(Certificate.type_id))).all())
    items = await _items(uow, {t.item_id for t in rows})
    return [_type_view(t, items.get(t.item_id), int(counts.get(t.id, 0))) for t in rows]


async def _items(uow: Uow, ids: Iterable[int]) -> dict[int, ServiceItem]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {i.id: i for i in (await uow.session.scalars(select(ServiceItem).where(ServiceItem.id.in_(wanted)))).all()}


async def save_type(uow: Uow, actor: Actor, type_id: int | None, *, name: str, item_id: int,
                    reminder_days: Sequence[int], active: bool = True) -> dict[str, Any]:
    """Add a type (``type_id`` None) or change one; its rules apply from the next scan."""
    actor.require(Role.admin)
    name = name.strip()
    if not name or len(name) > 50:
        raise Invalid("certificate_type_name", "请填写证照类型名称（不超过 50 字）")
    days = reminder_rules(reminder_days)
    item = await uow.session.get(ServiceItem, item_id)
    if item is None or not item.active:
        raise NotFound("item_not_found", "续办事项不存在或已停办", item_id=item_id)
    same = await uow.session.scalar(select(CertificateType).where(CertificateType.name == name))
    if same is not None and same.id != type_id:
        raise Conflict("certificate_type_exists", f"证照类型“{name}”已存在", type_id=same.id)
    if type_id is None:
        row = CertificateType(name=name, item_id=item.id, reminder_days=days, active=active,
                              created_at=uow.clock.now())
        uow.session.add(row)
        await uow.session.flush()
        action = "certificate_type.create"
    else:
        found = await uow.session.get(CertificateType, type_id)
        if found is None:
            raise NotFound("certificate_type_not_found", "证照类型不存在", type_id=type_id)
        row = found
        row.name, row.item_id, row.reminder_days, row.active = name, item.id, days, active
        action = "certificate_type.update"
    audit.record(uow, actor, action, "certificate_type", row.id, name=name, item_id=item.id, reminder_days=days,
                 active=active)
    count = await uow.session.scalar(select(func.count()).select_from(Certificate).where(Certificate.type_id == row.id))
    return _type_view(row, item, int(count or 0))


# --- reading the import file (server/domain/tables.py) -------------------------------------

HEADER = "持证人、手机号、身份证号（可选）、证照类型、证照编号、到期日期"


def read_table(data: bytes) -> list[TableRow]:
    """The certificates' rows of a CSV or XLSX file (``tables.read_table``). Blocking: call it in a thread."""
    return tables.read_table(data, COLUMNS, REQUIRED, HEADER)


_text = tables.text


def _date(value: Cell) -> date | None:
    if isinstance(value, date):
        return value
    text = _text(value)
    found = DATE.match(text) or DATE_COMPACT.match(text)
    if found is None:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


# --- importing ------------------------------------------------------------------------------


@dataclass
class _Good:
    line: int
    type_id: int
    number: str
    holder: str
    phone: str
    id_number: str
    expires_on: date


def _check(row: TableRow, kinds: dict[str, CertificateType]) -> tuple[_Good | None, list[tuple[str, str]]]:
    cells = row.cells
    problems: list[tuple[str, str]] = []
    holder = _text(cells.get("holder"))
    if not holder or len(holder) > 100:
        problems.append(("持证人", "持证人不能为空（不超过 100 字）"))
    phone = _text(cells.get("phone")).replace(" ", "").replace("-", "")
    if not notify.PHONE.match(phone):
        problems.append(("手机号", "手机号应为 11 位手机号码"))
    id_number = normalise_id_number(_text(cells.get("id_number")))
    if id_number and not id_number_valid(id_number):
        problems.append(("身份证号", "身份证号不正确（18 位，校验位不符）"))
    kind_name = _text(cells.get("type"))
    kind = kinds.get(kind_name)
    if kind is None:
        problems.append(("证照类型", f"证照类型“{kind_name[:50]}”不存在或已停用" if kind_name else "证照类型不能为空"))
    number = _text(cells.get("number"))
    if not number or len(number) > 64:
        problems.append(("证照编号", "证照编号不能为空（不超过 64 个字符）"))
    expires_on = _date(cells.get("expires_on"))
    if expires_on is None:
        problems.append(("到期日期", "到期日期应为日期，如 2027-03-01"))
    if problems or kind is None or expires_on is None:
        return None, problems
    return _Good(row.line, kind.id, number, holder, phone, id_number, expires_on), []


async def import_rows(uow: Uow, actor: Actor, rows: Sequence[TableRow]) -> dict[str, Any]:
    """导入证照 — each good row creates or updates the certificate of its type and number; each
    bad row is reported (row number, column, reason) and changes nothing."""
    actor.require(Role.admin)
    kinds = {t.name: t for t in (await uow.session.scalars(
        select(CertificateType).where(CertificateType.active.is_(True)))).all()}
    good, errors = tables.sort_rows(rows, lambda row: _check(row, kinds), lambda g: (g.type_id, g.number),
                                    "证照编号", "证照")
    created = updated = unchanged = 0
    now = uow.clock.now()
    existing: dict[tuple[int, str], Certificate] = {}
    keys = list(good)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        found = await uow.session.scalars(select(Certificate).where(
            Certificate.type_id.in_({k[0] for k in chunk}), Certificate.number.in_({k[1] for k in chunk})))
        existing.update({(c.type_id, c.number): c for c in found.all()})
    for key, g in good.items():
        phone_hash = _phone_hash(uow, g.phone)
        id_hash = uow.sealer.search_hash(g.id_number) if g.id_number else None
        cert = existing.get(key)
        if cert is None:
            uow.session.add(Certificate(
                type_id=g.type_id, number=g.number, holder_name=g.holder, holder_sealed=_seal(uow, g),
                phone_hash=phone_hash, phone_masked=mask_phone(g.phone) or "", id_number_hash=id_hash,
                id_number_masked=mask_id_number(g.id_number) or None, expires_on=g.expires_on, imported_at=now,
                updated_at=now))
            created += 1
            continue
        if (cert.holder_name, cert.phone_hash, cert.id_number_hash, cert.expires_on) == (
                g.holder, phone_hash, id_hash, g.expires_on):
            unchanged += 1
            continue
        if g.expires_on > cert.expires_on:  # renewed elsewhere: the next round of reminders begins
            if cert.renewed_at is None:
                await _stamp_renewal(uow, cert, now)
            cert.renewed_at = cert.renewal_source = cert.renewal_ticket_id = None
        cert.holder_name, cert.holder_sealed, cert.phone_hash = g.holder, _seal(uow, g), phone_hash
        cert.phone_masked, cert.id_number_hash = mask_phone(g.phone) or "", id_hash
        cert.id_number_masked = mask_id_number(g.id_number) or None
        cert.expires_on, cert.updated_at = g.expires_on, now
        updated += 1
    await uow.session.flush()
    bad_rows = len({e["row"] for e in errors})
    audit.record(uow, actor, "certificate.import", "certificate", "", rows=len(rows), created=created,
                 updated=updated, unchanged=unchanged, bad_rows=bad_rows)
    return {"rows": len(rows), "imported": created + updated + unchanged, "created": created, "updated": updated,
            "unchanged": unchanged, "bad_rows": bad_rows, "errors": errors}


def _seal(uow: Uow, g: _Good) -> str:
    return uow.sealer.seal({"phone": g.phone, **({"id_number": g.id_number} if g.id_number else {})})


# --- the scan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One reminder to send: the certificate, the expiry it is for, the rule."""

    certificate_id: int
    expires_on: date
    days_before: int


async def due(uow: Uow) -> list[Due]:
    """The reminders due at the domain clock's today: per certificate, the tightest rule whose
    day has come, unless sent already. None at night."""
    local = hours.local(uow.rules, uow.clock.now())
    if not SEND_FROM_HOUR <= local.hour < SEND_UNTIL_HOUR:
        return []
    today = local.date()
    rows = (await uow.session.execute(
        select(Certificate.id, Certificate.expires_on, CertificateType.reminder_days)
        .join(CertificateType, CertificateType.id == Certificate.type_id)
        .where(CertificateType.active.is_(True), Certificate.opted_out_at.is_(None), Certificate.renewed_at.is_(None),
               Certificate.expires_on >= today, Certificate.expires_on <= today + timedelta(days=MAX_RULE_DAYS))
        .order_by(Certificate.expires_on, Certificate.id))).all()
    wanted: list[Due] = []
    for certificate_id, expires_on, days in rows:
        left = (expires_on - today).days
        opened = [int(d) for d in days if left <= int(d)]
        if opened:
            wanted.append(Due(certificate_id, expires_on, min(opened)))
    sent: set[tuple[int, date, int]] = set()
    for start in range(0, len(wanted), 500):
        ids = [w.certificate_id for w in wanted[start:start + 500]]
        sent.update((await uow.session.execute(
            select(CertificateReminder.certificate_id, CertificateReminder.expires_on, CertificateReminder.days_before)
            .where(CertificateReminder.certificate_id.in_(ids)))).all())
    return [w for w in wanted if (w.certificate_id, w.expires_on, w.days_before) not in sent]


async def remind(uow: Uow, wanted: Due, *, origin: str) -> bool:
    """Text one reminder, once: False when it was sent already (another node, another pass) or the
    certificate changed meanwhile. ``origin``: where holders open the app (the link's start)."""
    cert = await uow.session.get(Certificate, wanted.certificate_id, with_for_update=True)
    if (cert is None or cert.opted_out_at is not None or cert.renewed_at is not None
            or cert.expires_on != wanted.expires_on):
        return False
    kind = await uow.session.get(CertificateType, cert.type_id)
    item = await uow.session.get(ServiceItem, kind.item_id) if kind is not None else None
    if kind is None or item is None or not kind.active:
        return False
    token = secrets.token_urlsafe(12)
    now = uow.clock.now()
    reminder = CertificateReminder(
        certificate_id=cert.id, type_id=kind.id, expires_on=cert.expires_on, days_before=wanted.days_before,
        token_hash=_hash(token), sent_at=now, opens=0,
        link_expires_at=hours.day_start_utc(uow.rules, cert.expires_on + timedelta(days=LINK_DAYS_AFTER_EXPIRY)))
    try:
        async with uow.session.begin_nested():
            uow.session.add(reminder)
    except IntegrityError:  # another node sent this one meanwhile
        return False
    left = (cert.expires_on - _today(uow)).days
    when = f"{cert.expires_on.year}年{cert.expires_on.month}月{cert.expires_on.day}日"
    url = origin.rstrip("/") + LINK_PATH + token
    phone = uow.sealer.open(cert.holder_sealed)["phone"]
    message = await notify.queue(
        uow, channel="sms", kind=KIND, to=phone,
        dedupe_key=f"certificate:{cert.id}:{cert.expires_on.isoformat()}:{wanted.days_before}",
        text=f"【云帮办】您的{kind.name}（编号 {cert.number}）将于{when}到期"
             f"{f'（还有 {left} 天）' if left else '（今天到期）'}，请及时办理“{item.name}”。"
             f"视频办理或预约请点 {url} 。如不需要提醒，可在该页面退订。")
    reminder.notification_id = message.id if message is not None else None
    audit.record(uow, SYSTEM, "certificate.reminded", "certificate", cert.id, days_before=wanted.days_before,
                 expires_on=cert.expires_on.isoformat(), notification_id=reminder.notification_id)
    return True


# --- the holder's link ------------------------------------------------------------------------


async def _open_link(uow: Uow, token: str) -> tuple[CertificateReminder, Certificate]:
    reminder = await uow.session.scalar(select(CertificateReminder).where(CertificateReminder.token_hash == _hash(token)))
    cert = await uow.session.get(Certificate, reminder.certificate_id) if reminder is not None else None
    if reminder is None or cert is None:
        raise NotFound("certificate_link_not_found", "链接无效，请打开云帮办或到便民服务中心办理")
    if reminder.link_expires_at <= uow.clock.now():
        raise Gone("certificate_link_expired", "链接已过期，请打开云帮办或到便民服务中心办理")
    return reminder, cert


async def read_link(uow: Uow, token: str, *, count: bool = True) -> dict[str, Any]:
    """What the reminder's link shows, to anyone holding it: the certificate (masked), its
    expiry, the item that renews it with the materials and where, and whether reminders stopped."""
    reminder, cert = await _open_link(uow, token)
    if count:
        await uow.session.execute(update(CertificateReminder).where(CertificateReminder.id == reminder.id)
                                  .values(opens=CertificateReminder.opens + 1).execution_options(synchronize_session=False))
    kind = await uow.session.get(CertificateType, cert.type_id)
    assert kind is not None
    item = await catalog.get_item(uow, kind.item_id)
    department = await uow.session.get(Department, item.department_id)
    return {
        "certificate": {"type": kind.name, "number": mask_number(cert.number), "holder": mask_name(cert.holder_name) or "",
                        "expires_on": cert.expires_on.isoformat(), "days_left": (cert.expires_on - _today(uow)).days,
                        "opted_out": cert.opted_out_at is not None, "renewed": cert.renewed_at is not None},
        "item": {"id": item.id, "name": item.name, "description": item.description, "level": item.level.value,
                 "active": item.active},
        "department": department.name if department is not None else "",
        "materials": [{"name": m.name, "required": m.required, "note": m.note} for m in item.materials],
        "sent_at": reminder.sent_at.isoformat(),
        "expires_at": reminder.link_expires_at.isoformat(),
    }


async def opt_out_by_link(uow: Uow, token: str, ip: str) -> dict[str, Any]:
    """不再提醒 — the holder stops this certificate's reminders from the link (asked twice: once)."""
    _, cert = await _open_link(uow, token)
    if cert.opted_out_at is None:
        cert.opted_out_at, cert.opted_out_by = uow.clock.now(), "holder"
        holder = Actor(0, cert.phone_masked, Role.resident, ip=ip)
        audit.record(uow, holder, "certificate.opt_out", "certificate", cert.id, by="holder")
    return await read_link(uow, token, count=False)


# --- the registry, for administrators -----------------------------------------------------------

STATES = ("current", "opted_out", "renewed", "expired")


def view(cert: Certificate, kind_name: str, reminders: Sequence[CertificateReminder], today: date) -> dict[str, Any]:
    """A certificate as administrators see it: holder, phone and ID number masked."""
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {"id": cert.id, "type_id": cert.type_id, "type": kind_name, "number": cert.number,
            "holder": mask_name(cert.holder_name) or "", "phone": cert.phone_masked,
            "id_number": cert.id_number_masked, "expires_on": cert.expires_on.isoformat(),
            "days_left": (cert.expires_on - today).days, "opted_out_at": iso(cert.opted_out_at),
            "opted_out_by": cert.opted_out_by, "renewed_at": iso(cert.renewed_at),
            "renewal_source": cert.renewal_source, "renewal_ticket_id": cert.renewal_ticket_id,
            "reminders": [{"days_before": r.days_before, "sent_at": r.sent_at.isoformat()}
                          for r in reminders if r.expires_on == cert.expires_on],
            "updated_at": cert.updated_at.isoformat()}


async def _views(uow: Uow, certs: Sequence[Certificate]) -> list[dict[str, Any]]:
    names = dict((await uow.session.execute(select(CertificateType.id, CertificateType.name))).all())
    sent: dict[int, list[CertificateReminder]] = defaultdict(list)
    if certs:
        for r in (await uow.session.scalars(select(CertificateReminder).where(
                CertificateReminder.certificate_id.in_([c.id for c in certs])).order_by(CertificateReminder.id))).all():
            sent[r.certificate_id].append(r)
    today = _today(uow)
    return [view(c, names.get(c.type_id, ""), sent[c.id], today) for c in certs]


async def listing(uow: Uow, actor: Actor, *, type_id: int | None = None, q: str | None = None,
                  state: str | None = None, limit: int = 100, before_id: int | None = None) -> dict[str, Any]:
    """证照登记 — newest first, masked; ``q`` an 11-digit phone (exact), else part of the number
    or the holder's name. Each read is audited."""
    actor.require(Role.admin)
    if state is not None and state not in STATES:
        raise Invalid("certificate_state_invalid", "状态无效", state=state)
    today = _today(uow)
    stmt = select(Certificate)
    if type_id is not None:
        stmt = stmt.where(Certificate.type_id == type_id)
    if q:
        q = q.strip()
        if notify.PHONE.match(q):
            stmt = stmt.where(Certificate.phone_hash == _phone_hash(uow, q))
        else:
            like = f"%{q}%"
            stmt = stmt.where(or_(Certificate.number.like(like), Certificate.holder_name.like(like)))
    if state == "opted_out":
        stmt = stmt.where(Certificate.opted_out_at.is_not(None))
    elif state == "renewed":
        stmt = stmt.where(Certificate.renewed_at.is_not(None))
    elif state == "expired":
        stmt = stmt.where(Certificate.expires_on < today, Certificate.renewed_at.is_(None))
    elif state == "current":
        stmt = stmt.where(Certificate.expires_on >= today, Certificate.renewed_at.is_(None),
                          Certificate.opted_out_at.is_(None))
    total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery()))
    if before_id is not None:
        stmt = stmt.where(Certificate.id < before_id)
    rows = (await uow.session.scalars(stmt.order_by(Certificate.id.desc()).limit(max(1, min(limit, 500))))).all()
    audit.record(uow, actor, "certificate.read", "certificate", "", state=state, type_id=type_id, shown=len(rows))
    return {"certificates": await _views(uow, rows), "total": int(total or 0)}


async def _certificate(uow: Uow, certificate_id: int) -> Certificate:
    cert = await uow.session.get(Certificate, certificate_id, with_for_update=True)
    if cert is None:
        raise NotFound("certificate_not_found", "证照不存在", certificate_id=certificate_id)
    return cert


async def set_opt_out(uow: Uow, actor: Actor, certificate_id: int, opted_out: bool) -> dict[str, Any]:
    """An administrator stops a certificate's reminders (the holder asked by phone) or resumes them."""
    actor.require(Role.admin)
    cert = await _certificate(uow, certificate_id)
    if (cert.opted_out_at is not None) != opted_out:
        cert.opted_out_at, cert.opted_out_by = (uow.clock.now(), "admin") if opted_out else (None, None)
        audit.record(uow, actor, "certificate.opt_out" if opted_out else "certificate.opt_in", "certificate", cert.id,
                     by="admin")
    return (await _views(uow, [cert]))[0]


async def mark_renewed(uow: Uow, actor: Actor, certificate_id: int) -> dict[str, Any]:
    """An administrator records a renewal done elsewhere (at a counter, by post)."""
    actor.require(Role.admin)
    cert = await _certificate(uow, certificate_id)
    if cert.renewed_at is not None:
        raise Conflict("certificate_already_renewed", "该证照已记为续办", renewed_at=cert.renewed_at.isoformat())
    await _renew(uow, actor, cert, "admin", None)
    return (await _views(uow, [cert]))[0]


async def _stamp_renewal(uow: Uow, cert: Certificate, at: datetime) -> None:
    """The renewal that followed this round's reminders (the report reads it there)."""
    await uow.session.execute(
        update(CertificateReminder)
        .where(CertificateReminder.certificate_id == cert.id, CertificateReminder.expires_on == cert.expires_on,
               CertificateReminder.renewed_at.is_(None))
        .values(renewed_at=at).execution_options(synchronize_session=False))


async def _renew(uow: Uow, actor: Actor, cert: Certificate, source: str, ticket_id: int | None) -> None:
    now = uow.clock.now()
    cert.renewed_at, cert.renewal_source, cert.renewal_ticket_id = now, source, ticket_id
    await _stamp_renewal(uow, cert, now)
    audit.record(uow, actor, "certificate.renewed", "certificate", cert.id, source=source, ticket_id=ticket_id)


async def renewed_by_case(uow: Uow, actor: Actor, ticket: Ticket, item_id: int) -> int:
    """A case for ``item_id`` was completed as done: the same person's certificates that this
    item renews, within their reminder window, are renewed. Returns how many."""
    kinds = (await uow.session.execute(select(CertificateType.id, CertificateType.reminder_days)
                                       .where(CertificateType.item_id == item_id))).all()
    if not kinds:
        return 0
    who = []
    if ticket.id_number_hash:
        who.append(Certificate.id_number_hash == ticket.id_number_hash)
    phones: set[str] = set()
    if ticket.resident_sealed:
        phone = uow.sealer.open(ticket.resident_sealed).get("phone", "").replace(" ", "").replace("-", "")
        if notify.PHONE.match(phone):
            phones.add(_phone_hash(uow, phone))
    if ticket.source == "direct":  # the resident's own account (屏对屏)
        user = await uow.session.get(User, ticket.worker_id)
        if user is not None and user.phone_hash:
            phones.add(user.phone_hash)
    if phones:
        who.append(Certificate.phone_hash.in_(phones))
    if not who:
        return 0
    today = _today(uow)
    ahead = max((max(days, default=0) for _, days in kinds), default=0)
    certs = (await uow.session.scalars(select(Certificate).where(
        Certificate.type_id.in_([k for k, _ in kinds]), Certificate.renewed_at.is_(None), or_(*who),
        Certificate.expires_on >= today - timedelta(days=RENEWAL_DAYS_AFTER_EXPIRY),
        Certificate.expires_on <= today + timedelta(days=int(ahead))))).all()
    for cert in certs:
        await _renew(uow, actor, cert, "case", ticket.id)
    return len(certs)


# --- the report -------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Reminders counted for one row of the report; a round is (certificate, expiry)."""

    reminders: int = 0
    rounds: set[tuple[int, date]] = field(default_factory=set)
    renewed: set[tuple[int, date]] = field(default_factory=set)
    opted_out: set[int] = field(default_factory=set)
    rules: Counter[int] = field(default_factory=Counter)

    def add(self, r: CertificateReminder, opted_out: datetime | None, window: timedelta) -> None:
        self.reminders += 1
        self.rules[r.days_before] += 1
        self.rounds.add((r.certificate_id, r.expires_on))
        if r.renewed_at is not None and r.sent_at <= r.renewed_at <= r.sent_at + window:
            self.renewed.add((r.certificate_id, r.expires_on))
        if opted_out is not None:
            self.opted_out.add(r.certificate_id)

    def figures(self) -> dict[str, Any]:
        rounds = len(self.rounds)
        return {"reminders": self.reminders, "certificates": rounds, "renewed": len(self.renewed),
                "renewal_rate": round(len(self.renewed) / rounds, 3) if rounds else 0.0,
                "opted_out": len(self.opted_out)}


async def report(uow: Uow, actor: Actor, *, start: date | None = None, end: date | None = None,
                 within_days: int = 30) -> dict[str, Any]:
    """提醒成效 — reminders sent from ``start`` to ``end`` (local days, both included; the last 90
    days by default) per type, rule and month; the rounds of reminders (a certificate's expiry)
    they make; how many of those a renewal followed within ``within_days`` of a reminder; how
    many holders opted out."""
    actor.require(Role.admin, Role.supervisor)
    end = end or _today(uow)
    if not EARLIEST <= end <= LATEST or (start is not None and not EARLIEST <= start <= LATEST):
        raise Invalid("period_invalid", f"统计时段应在 {EARLIEST.year} 至 {LATEST.year} 年之间")
    start = start or end - timedelta(days=89)
    if start > end or (end - start).days > 3660:
        raise Invalid("period_invalid", "统计时段无效：开始日期应不晚于结束日期，且不超过 10 年")
    if not 1 <= within_days <= 365:
        raise Invalid("within_days_invalid", "续办统计天数应为 1–365")
    rows = (await uow.session.execute(
        select(CertificateReminder, Certificate.opted_out_at)
        .join(Certificate, Certificate.id == CertificateReminder.certificate_id)
        .where(CertificateReminder.sent_at >= hours.day_start_utc(uow.rules, start),
               CertificateReminder.sent_at < hours.day_start_utc(uow.rules, end + timedelta(days=1)))
        .order_by(CertificateReminder.id))).all()
    names = dict((await uow.session.execute(select(CertificateType.id, CertificateType.name))).all())

    per_type: dict[int, _Tally] = defaultdict(_Tally)
    per_month: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for r, opted_out in rows:
        for tally in (per_type[r.type_id], per_month[hours.local(uow.rules, r.sent_at).strftime("%Y-%m")], total):
            tally.add(r, opted_out, timedelta(days=within_days))
    return {
        "start": start.isoformat(), "end": end.isoformat(), "within_days": within_days,
        "types": [{"type_id": type_id, "name": names.get(type_id, ""), **tally.figures(),
                   "by_rule": [{"days_before": d, "reminders": n}
                               for d, n in sorted(tally.rules.items(), reverse=True)]}
                  for type_id, tally in sorted(per_type.items())],
        "months": [{"month": month, **tally.figures()} for month, tally in sorted(per_month.items())],
        "total": total.figures(),
    }
