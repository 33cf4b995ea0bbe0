"""预约 — a resident on their own phone (屏对屏) books a slot in a queue's service hours; when the
slot begins the booking becomes a ticket that is served ahead of walk-ins (docs/queue.md).

The rules (``config.QueueRules``):

- slots are ``appointment_slot_minutes`` (30) long, laid from the start of each span of the
  service hours (a 24×7 centre: from midnight), from the next slot to ``appointment_days_ahead``
  (7) days ahead, and take ``appointments_per_slot`` (3) bookings per queue (centre ×
  department);
- a resident holds one booking at a time, and may cancel it until it enters the queue;
- at the slot's start the monitor turns each booking into a ticket (source ``direct``,
  ``appointment_at`` = the slot) in the same queue; ``queue._order_key`` serves those after
  priority tickets and before call-backs and walk-ins. A booking whose resident already has an
  open ticket, or whose slot ended while the server was down, is ``missed`` (and told so);
- the resident is texted (through the outbox) when booking and when the ticket is in the queue.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from server.domain import audit, hours, notify, queue, residents, situations
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, DomainError, Invalid, NotFound
from server.models import Appointment, Role, ServiceItem, User

log = logging.getLogger("yunbang.appointments")

BOOKED, QUEUED, CANCELLED, MISSED = "booked", "queued", "cancelled", "missed"
TAKEN = (BOOKED, QUEUED)  # what counts against a slot's places


def _slots_of_day(uow: Uow, day: date) -> list[tuple[datetime, datetime]]:
    """The day's slots (local time → aware datetimes), in order."""
    rules = uow.rules
    if not hours.is_service_day(rules, day):
        return []
    length = timedelta(minutes=rules.appointment_slot_minutes)
    start_of_day = hours.day_start_utc(rules, day)
    spans: list[tuple[datetime, datetime]] = []
    if rules.service_hours.always:
        spans.append((start_of_day, start_of_day + timedelta(days=1)))
    else:
        for days, opens, closes in rules.service_hours.spans:
            if day.weekday() in days:
                spans.append((start_of_day.replace(hour=opens.hour, minute=opens.minute),
                              start_of_day.replace(hour=closes.hour, minute=closes.minute)))
    out = []
    for begin, finish in sorted(spans):
        at = begin
        while at + length <= finish:
            out.append((at, at + length))
            at += length
    return out


async def _queue_of(uow: Uow, item_id: int, centre_id: int | None, situation_id: int | None
                    ) -> tuple[ServiceItem, int, int | None]:
    item = await uow.session.get(ServiceItem, item_id)
    if item is None or not item.active:
        raise NotFound("item_not_found", "事项不存在或已停办", item_id=item_id)
    situation = await situations.of_item(uow, item, situation_id)
    centre = await queue.direct_centre(uow, item, centre_id)
    return item, centre, situation.id if situation is not None else None


async def _taken(uow: Uow, centre_id: int, department_id: int, start: datetime, end: datetime) -> dict[datetime, int]:
    rows = await uow.session.execute(
        select(Appointment.slot_start, func.count()).where(
            Appointment.centre_id == centre_id, Appointment.department_id == department_id,
            Appointment.state.in_(TAKEN), Appointment.slot_start >= start, Appointment.slot_start < end,
        ).group_by(Appointment.slot_start))
    return {at: n for at, n in rows}


async def free_slots(uow: Uow, actor: Actor, *, item_id: int, centre_id: int | None,
                     day: date | None) -> list[dict[str, Any]]:
    """The bookable slots for this item's queue, each with its places left: of ``day``, or of
    every day that may be booked (today to ``appointment_days_ahead`` days ahead)."""
    actor.require(Role.resident)
    item, centre, _ = await _queue_of(uow, item_id, centre_id, None)
    now = uow.clock.now()
    today = hours.local_day(uow.rules, now)
    last = today + timedelta(days=uow.rules.appointment_days_ahead)
    days = [day] if day is not None else [today + timedelta(days=n) for n in range((last - today).days + 1)]
    slots = [(s, e) for d in days if today <= d <= last for s, e in _slots_of_day(uow, d) if s > now]
    if not slots:
        return []
    taken = await _taken(uow, centre, item.department_id, slots[0][0], slots[-1][1])
    per = uow.rules.appointments_per_slot
    return [{"start": s.isoformat(), "end": e.isoformat(),
             "left": max(0, per - taken.get(s, 0))} for s, e in slots]


def view(a: Appointment) -> dict[str, Any]:
    return {"id": a.id, "item_id": a.item_id, "situation_id": a.situation_id, "centre_id": a.centre_id,
            "department_id": a.department_id, "slot_start": a.slot_start.isoformat(),
            "slot_end": a.slot_end.isoformat(), "name": a.name, "state": a.state, "ticket_id": a.ticket_id,
            "created_at": a.created_at.isoformat(), "note": a.note}


async def book(uow: Uow, actor: Actor, *, item_id: int, centre_id: int | None, situation_id: int | None,
               slot_start: datetime, name: str) -> Appointment:
    """预约 — a place in one of the next days' slots; refused (and nothing kept) when the slot is
    not one, is past or full, or the resident already holds a booking."""
    actor.require(Role.resident)
    name = name.strip()
    if not name:
        raise Invalid("resident_name_required", "请填写办事人姓名")
    item, centre, situation = await _queue_of(uow, item_id, centre_id, situation_id)
    now = uow.clock.now()
    if slot_start.tzinfo is None:
        raise Invalid("slot_invalid", "预约时段须带时区")
    day = hours.local_day(uow.rules, slot_start)
    slot = next(((s, e) for s, e in _slots_of_day(uow, day) if s == slot_start), None)
    if slot is None:
        raise Invalid("slot_invalid", "不是可预约的时段，请在服务时间内选择")
    if slot[0] <= now or day > hours.local_day(uow.rules, now) + timedelta(days=uow.rules.appointment_days_ahead):
        raise Invalid("slot_unavailable", f"只能预约今后 {uow.rules.appointment_days_ahead} 天内尚未开始的时段")
    await uow.serialize(f"appointment-user:{actor.user_id}")  # a double tap books once (user, then slot: one order)
    held = await uow.session.scalar(select(Appointment).where(Appointment.user_id == actor.user_id,
                                                              Appointment.state == BOOKED).limit(1))
    if held is not None:
        raise Conflict("appointment_exists", "您已有一个预约，请先办理或取消", appointment_id=held.id)
    # Bookings of one slot of one queue one at a time, so the last place goes to one of them.
    await uow.serialize(f"appointment-slot:{centre}:{item.department_id}:{slot[0].isoformat()}")
    taken = await _taken(uow, centre, item.department_id, slot[0], slot[1])
    if sum(taken.values()) >= uow.rules.appointments_per_slot:
        raise Conflict("slot_full", "该时段已约满，请选择其他时段")
    booking = Appointment(user_id=actor.user_id, item_id=item.id, situation_id=situation, centre_id=centre,
                          department_id=item.department_id, slot_start=slot[0], slot_end=slot[1], name=name[:50],
                          state=BOOKED, created_at=now, note="")
    uow.session.add(booking)
    await uow.session.flush()
    audit.record(uow, actor, "appointment.book", "appointment", booking.id, item_id=item.id,
                 slot_start=slot[0].isoformat())
    await _text(uow, actor.user_id, f"【云帮办】您已预约“{item.name}”，时间 {_when(uow, slot[0])}。"
                                    "届时请打开云帮办等候视频连线；如不能办理请提前取消。")
    return booking


def _when(uow: Uow, at: datetime) -> str:
    return hours.local(uow.rules, at).strftime("%m月%d日 %H:%M")


async def _text(uow: Uow, user_id: int, text: str) -> None:
    user = await uow.session.get(User, user_id)
    phone = residents.phone_of(uow, user) if user is not None else ""
    if phone:
        await notify.queue(uow, channel="sms", kind="appointment", to=phone, text=text)


async def mine(uow: Uow, actor: Actor) -> list[Appointment]:
    actor.require(Role.resident)
    rows = await uow.session.scalars(select(Appointment).where(Appointment.user_id == actor.user_id)
                                     .order_by(Appointment.id.desc()).limit(20))
    return list(rows.all())


async def cancel(uow: Uow, actor: Actor, appointment_id: int) -> Appointment:
    actor.require(Role.resident)
    booking = await uow.session.get(Appointment, appointment_id, with_for_update=True)
    if booking is None or booking.user_id != actor.user_id:
        raise NotFound("appointment_not_found", "预约不存在", appointment_id=appointment_id)
    if booking.state != BOOKED:
        raise Conflict("appointment_not_booked", "该预约已进入排队或已取消，不能再取消", state=booking.state)
    booking.state = CANCELLED
    audit.record(uow, actor, "appointment.cancel", "appointment", booking.id)
    return booking


async def due(uow: Uow) -> list[int]:
    """Bookings whose slot has begun and that have not entered the queue yet."""
    rows = await uow.session.scalars(select(Appointment.id).where(Appointment.state == BOOKED,
                                                                  Appointment.slot_start <= uow.clock.now())
                                     .order_by(Appointment.slot_start, Appointment.id))
    return list(rows.all())


async def enter(uow: Uow, appointment_id: int) -> None:
    """One due booking becomes a ticket ahead of walk-ins (or ``missed``, saying why)."""
    booking = await uow.session.get(Appointment, appointment_id, with_for_update=True)
    if booking is None or booking.state != BOOKED:
        return  # another node did it
    user = await uow.session.get(User, booking.user_id)
    now = uow.clock.now()
    if user is None or not user.active:
        booking.state, booking.note = MISSED, "账号已停用"
        return
    if now >= booking.slot_end + (booking.slot_end - booking.slot_start):
        booking.state, booking.note = MISSED, "预约时段已过"
        await _text(uow, user.id, "【云帮办】您的预约时段已过，未能进入排队。如需办理请重新预约或直接取号。")
        return
    resident = Actor(user.id, user.username, Role.resident, ip="appointment")
    try:
        async with uow.session.begin_nested():
            ticket, _ = await queue.take_ticket(uow, resident, item_id=booking.item_id,
                                                resident={"name": booking.name}, centre_id=booking.centre_id,
                                                situation_id=booking.situation_id, appointment_at=booking.slot_start)
    except DomainError as exc:  # an open ticket already, no window now, the item stopped …
        booking.state, booking.note = MISSED, exc.message[:200]
        log.info("appointment %s not entered: %s", booking.id, exc.code)
        await _text(uow, user.id, f"【云帮办】您预约的事项未能进入排队：{exc.message}")
        return
    booking.state, booking.ticket_id = QUEUED, ticket.id
    await _text(uow, user.id, f"【云帮办】您预约的业务已进入排队，号码 {ticket.number}，"
                              "请打开云帮办保持在线，窗口将视频连线您。")

