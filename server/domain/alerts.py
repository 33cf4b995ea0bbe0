"""等候超时提醒与红黄预警 — wait-timeout alerts and yellow/red queue warnings.

A ticket waiting longer than the threshold (15 minutes by default) raises one alert. A queue's
warning level is computed from its waiting count and longest wait; a rise in level raises one
alert per crossing (the level last raised is kept in ``queue_states``, so a restart or a
second node does not raise it again). Alerts go to the department's supervisors: live on the
wall, and pushed through the notifier (``_push``: the department's supervisors, a red warning
the centre's heads too; each with a link that acknowledges it without logging in), once per
alert; an unacknowledged red warning whose queue is still red is pushed again every
``alert_renotify_minutes`` (``renotify_due``).
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.domain import audit, hours, paging, stats
from server.domain.access import supervisors_of, watched, watches
from server.domain.context import Actor, Uow
from server.domain.errors import Gone, NotFound
from server.events import Audience
from server.models import Alert, Centre, Department, QueueState, Role, Ticket, TicketStatus, User

LEVEL_NAMES = {"yellow": "黄色预警", "red": "红色预警"}
ACK_PATH = "/app/a/"  # the page a pushed alert links to: acknowledge without logging in
ACK_HOURS = 24  # how long that link acknowledges


def alert_view(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "level": a.level,
        "centre_id": a.centre_id,
        "department_id": a.department_id,
        "ticket_id": a.ticket_id,
        "message": a.message,
        "detail": a.detail,
        "created_at": a.created_at.isoformat(),
        "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        "acknowledged_by_id": a.acknowledged_by_id,
    }


def _raise(uow: Uow, alert: Alert) -> None:
    uow.session.add(alert)
    audit.record(uow, Actor(0, "system", Role.admin), f"alert.{alert.kind}", "alert", "",
                 level=alert.level, department_id=alert.department_id, ticket_id=alert.ticket_id)


async def _publish(uow: Uow, alerts: list[Alert]) -> None:
    if not alerts:
        return
    await uow.session.flush()
    for a in alerts:
        uow.emit("alert.raised", alert_view(a), Audience(queue_supervisors=((a.centre_id, a.department_id),), admins=True))
        await _push(uow, a)


def ack_token(uow: Uow, alert_id: int, user_id: int) -> str:
    """The link's token: which alert, for whom, keyed (only the server can make one)."""
    return f"{alert_id}-{user_id}-{_signature(uow, alert_id, user_id)}"


def _signature(uow: Uow, alert_id: int, user_id: int) -> str:
    return uow.sealer.search_hash(f"alert-ack:{alert_id}:{user_id}")[:24]


async def _push(uow: Uow, alert: Alert) -> None:
    """到人 — send the alert to who answers for its queue: the department's supervisors (a red
    warning: the centre's heads too), through the staff channel, and by SMS as
    ``alert_sms`` says; each with its link to acknowledge. Once per alert and round."""
    department, heads = await supervisors_of(uow, alert.centre_id, alert.department_id)
    people = [*department, *heads] if alert.level == "red" else department
    round_ = alert.notify_count + 1
    centre = await uow.session.get(Centre, alert.centre_id)
    title = "等候超时提醒" if alert.kind == "wait_timeout" else LEVEL_NAMES.get(alert.level, "预警")
    head = f"【云帮办·{title}{'·再次提醒' if round_ > 1 else ''}】{centre.name if centre else ''} {alert.message}"
    sms = uow.notify.alert_sms == "all" or (uow.notify.alert_sms == "red" and alert.level == "red")

    def text(person: User | None) -> str:
        if person is None:
            return f"{head}。请 {{names}} 处理（在大屏确认：{uow.link_origin}/app/wall）"
        return f"{head}。确认收到：{uow.link_origin}{ACK_PATH}{ack_token(uow, alert.id, person.id)}"

    await paging.page(uow, people, kind=f"alert_{alert.kind}", key=f"alert:{alert.id}:{round_}", text=text, sms=sms)
    alert.notified_at, alert.notify_count = uow.clock.now(), round_


async def renotify_due(uow: Uow) -> list[int]:
    """再次提醒 — red warnings not acknowledged ``alert_renotify_minutes`` after they were last
    pushed, their queue still red (the newest one of it), pushed again. The monitor's pass."""
    minutes = uow.notify.alert_renotify_minutes
    if minutes <= 0:
        return []
    now = uow.clock.now()
    due = list((await uow.session.scalars(
        select(Alert).join(QueueState, and_(QueueState.centre_id == Alert.centre_id,
                                            QueueState.department_id == Alert.department_id))
        .where(Alert.kind == "warning", Alert.level == "red", Alert.acknowledged_at.is_(None),
               Alert.notified_at <= now - timedelta(minutes=minutes), QueueState.level == "red",
               Alert.created_at >= QueueState.changed_at)
        .order_by(Alert.id).limit(100).with_for_update(skip_locked=True, of=Alert))).all())
    for alert in due:
        await _push(uow, alert)
    return [a.id for a in due]


async def _by_link(uow: Uow, token: str) -> tuple[Alert, User]:
    parts = token.split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise NotFound("alert_link_not_found", "链接无效")
    alert_id, user_id = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2], _signature(uow, alert_id, user_id)):
        raise NotFound("alert_link_not_found", "链接无效")
    alert, user = await uow.session.get(Alert, alert_id), await uow.session.get(User, user_id)
    if alert is None or user is None or not user.active or user.role is not Role.supervisor:
        raise NotFound("alert_link_not_found", "链接无效")
    if uow.clock.now() > alert.created_at + timedelta(hours=ACK_HOURS):
        raise Gone("alert_link_expired", "链接已过期，请在大屏上确认")
    return alert, user


async def read_by_link(uow: Uow, token: str) -> dict[str, Any]:
    """What the pushed link shows, to who holds it: the alert, its queue, whether acknowledged."""
    alert, user = await _by_link(uow, token)
    centre = await uow.session.get(Centre, alert.centre_id)
    department = await uow.session.get(Department, alert.department_id)
    return {**alert_view(alert), "centre_name": centre.name if centre else "",
            "department_name": department.name if department else "", "sent_to": user.display_name}


async def acknowledge_by_link(uow: Uow, token: str, ip: str = "") -> dict[str, Any]:
    """确认收到 from the pushed link: acknowledged as the supervisor it was sent to."""
    alert, user = await _by_link(uow, token)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id = uow.clock.now(), user.id
        audit.record(uow, Actor(user.id, user.username, Role.supervisor, ip=ip), "alert.acknowledge", "alert",
                     alert.id, via="link")
    return await read_by_link(uow, token)


async def evaluate_queue(uow: Uow, centre_id: int, department_id: int) -> Alert | None:
    """Raise a warning if this queue's level rose since the last one raised."""
    figure = (await stats.queue_stats(uow, centre_id=centre_id, department_id=department_id)).get(
        (centre_id, department_id), stats.QueueStat(centre_id, department_id)
    )
    level = figure.level(uow.rules)
    seen = await uow.session.scalar(
        select(QueueState.level).where(QueueState.centre_id == centre_id, QueueState.department_id == department_id)
    )
    if seen == level or (seen is None and level == "green"):
        return None  # the common case: no lock taken on the hot path of taking a ticket
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    await uow.session.execute(
        insert(QueueState)
        .values(centre_id=centre_id, department_id=department_id, level="green")
        .on_conflict_do_nothing()
    )
    state = (
        await uow.session.scalars(
            select(QueueState)
            .where(QueueState.centre_id == centre_id, QueueState.department_id == department_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    if level == state.level:
        return None
    rose = stats.LEVELS.index(level) > stats.LEVELS.index(state.level)
    state.level, state.changed_at = level, uow.clock.now()
    if not rose:
        return None
    department = await uow.session.get(Department, department_id)
    name = department.name if department else str(department_id)
    alert = Alert(
        kind="warning",
        level=level,
        centre_id=centre_id,
        department_id=department_id,
        message=(
            f"{name}{LEVEL_NAMES[level]}：{figure.waiting} 人等候，"
            f"最长已等 {int(figure.longest_wait_s // 60)} 分钟"
        ),
        detail={"waiting": figure.waiting, "longest_wait_s": int(figure.longest_wait_s)},
        created_at=uow.clock.now(),
    )
    _raise(uow, alert)
    await _publish(uow, [alert])
    return alert


async def check(uow: Uow, *, limit: int = 500) -> list[Alert]:
    """One monitoring pass: wait-timeout alerts, then every queue's warning level."""
    raised = await _wait_timeouts(uow, limit)
    queues = set(await stats.queue_stats(uow))
    queues |= {
        (c, d)
        for c, d in (
            await uow.session.execute(
                select(QueueState.centre_id, QueueState.department_id).where(QueueState.level != "green")
            )
        ).all()
    }
    for centre_id, department_id in sorted(queues):
        alert = await evaluate_queue(uow, centre_id, department_id)
        if alert is not None:
            raised.append(alert)
    return raised


async def _wait_timeouts(uow: Uow, limit: int) -> list[Alert]:
    now = uow.clock.now()
    if not hours.is_open(uow.rules, now):
        return []
    threshold = timedelta(minutes=uow.rules.wait_alert_minutes)
    cutoff = now - threshold
    today = hours.local_day(uow.rules, now)
    # A ticket handed to this queue (transfer, a bundle's next department) waits from then.
    late = and_(Ticket.callback.is_(False), func.coalesce(Ticket.queued_at, Ticket.taken_at) <= cutoff)
    if stats.opening_time(uow.rules, today) <= cutoff:
        late = or_(late, Ticket.callback.is_(True))
    tickets = (
        await uow.session.scalars(
            select(Ticket)
            .where(
                Ticket.status == TicketStatus.waiting,
                Ticket.service_day <= today,
                Ticket.wait_alerted_at.is_(None),
                late,
            )
            .order_by(Ticket.taken_at)
            .limit(limit)
        )
    ).all()
    raised: list[Alert] = []
    for t in tickets:
        claimed = await uow.changed(
            update(Ticket).where(Ticket.id == t.id, Ticket.wait_alerted_at.is_(None)).values(wait_alerted_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed != 1:
            continue
        waited = now - stats.wait_start(uow.rules, t.queued_at or t.taken_at, t.callback, today)
        alert = Alert(
            kind="wait_timeout",
            level="yellow",
            centre_id=t.centre_id,
            department_id=t.department_id,
            ticket_id=t.id,
            message=f"{t.number} 号已等候 {int(waited.total_seconds() // 60)} 分钟，超过 "
            f"{uow.rules.wait_alert_minutes:g} 分钟提醒线",
            detail={"number": t.number, "waited_s": int(waited.total_seconds())},
            created_at=now,
        )
        _raise(uow, alert)
        raised.append(alert)
    await _publish(uow, raised)
    return raised


async def list_alerts(
    uow: Uow, actor: Actor, *, since: datetime | None = None, unacknowledged: bool = False, limit: int = 100
) -> list[Alert]:
    actor.require(Role.supervisor, Role.admin)
    stmt = select(Alert).order_by(Alert.id.desc()).limit(max(1, min(limit, 500)))
    stmt = stmt.where(watched(actor, Alert.centre_id, Alert.department_id))
    if since is not None:
        stmt = stmt.where(Alert.created_at >= since)
    if unacknowledged:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    return list((await uow.session.scalars(stmt)).all())


async def acknowledge(uow: Uow, actor: Actor, alert_id: int) -> Alert:
    actor.require(Role.supervisor, Role.admin)
    alert = await uow.session.get(Alert, alert_id)
    if alert is None or not watches(actor, alert.centre_id, alert.department_id):
        raise NotFound("alert_not_found", "提醒不存在", alert_id=alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id = uow.clock.now(), actor.user_id
        audit.record(uow, actor, "alert.acknowledge", "alert", alert.id)
    return alert
