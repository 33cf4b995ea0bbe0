"""SQLAlchemy 2.0 typed models. Ticket state lives here, never only in memory."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON, list[int]: JSON}


class Role(enum.StrEnum):
    worker = "worker"
    clerk = "clerk"
    expert = "expert"
    supervisor = "supervisor"
    admin = "admin"
    auditor = "auditor"
    resident = "resident"  # 群众/企业 on their own phone (屏对屏), signed in with an SMS code


class CentreLevel(enum.StrEnum):
    district = "district"
    town = "town"


class TicketStatus(enum.StrEnum):
    waiting = "waiting"
    called = "called"
    in_service = "in_service"
    completed = "completed"
    no_show = "no_show"
    cancelled = "cancelled"

    # The groups the queue, the calls, the org, the stats and the client speak of, defined here
    # once (the client's copy, web-client/src/api/status.ts, is checked against them by a test).
    @classmethod
    def open_states(cls) -> tuple[TicketStatus, ...]:
        """Not finished: waiting in the queue, or at a window."""
        return (cls.waiting, cls.called, cls.in_service)

    @classmethod
    def in_call_states(cls) -> tuple[TicketStatus, ...]:
        """At a window: called or being served — the ticket has a call."""
        return (cls.called, cls.in_service)

    @classmethod
    def finished_states(cls) -> tuple[TicketStatus, ...]:
        return (cls.completed, cls.no_show, cls.cancelled)

    @property
    def is_open(self) -> bool:
        return self in TicketStatus.open_states()

    @property
    def in_call(self) -> bool:
        return self in TicketStatus.in_call_states()


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20, validate_strings=True)


window_departments = Table(
    "window_departments",
    Base.metadata,
    Column("window_id", ForeignKey("cloud_windows.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)

clerk_windows = Table(
    "clerk_windows",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("window_id", ForeignKey("cloud_windows.id", ondelete="CASCADE"), primary_key=True),
)

expert_departments = Table(
    "expert_departments",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)

supervisor_departments = Table(
    "supervisor_departments",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)


supervisor_centres = Table(
    "supervisor_centres",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("centre_id", ForeignKey("centres.id", ondelete="CASCADE"), primary_key=True),
)


class Centre(Base):
    """便民服务中心 — the district cloud centre or a town centre."""

    __tablename__ = "centres"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[CentreLevel] = mapped_column(_enum(CentreLevel, "centre_level"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"))


class ExtensionPoint(Base):
    """延伸点 — a community office, park or mall where a worker helps residents. Named uniquely
    within its town centre; a point stopped (``active`` false) takes no tickets. ``last_connected_at``:
    when one of its workers last logged in or had a live connection (docs/network.md)."""

    __tablename__ = "extension_points"
    __table_args__ = (Index("ix_extension_points_centre_name", "centre_id", "name", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="", server_default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="", server_default="")  # the office's, not a person's
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_connected_at: Mapped[datetime | None]


class Department(Base):
    """部门 — handles a set of items; its code prefixes ticket numbers (MZ012)."""

    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class CloudWindow(Base):
    """云窗口 — a cloud window at a centre, serving one or more departments."""

    __tablename__ = "cloud_windows"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tidal: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None] = mapped_column(index=True)
    closes_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", use_alter=True))
    departments: Mapped[list[Department]] = relationship(secondary=window_departments, lazy="raise")


class ServiceItem(Base):
    """事项 — a service item with its materials checklist (一次性告知清单)."""

    __tablename__ = "service_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    initials: Mapped[str] = mapped_column(String(40), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    level: Mapped[CentreLevel] = mapped_column(_enum(CentreLevel, "item_level"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The certificates / results the item issues (营业执照, 居住证 …): a later item of a bundle
    # that asks for one gets it from the earlier one inside the government, not from the resident.
    produces: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # The item's general checklist: its lines that belong to no situation.
    materials: Mapped[list[Material]] = relationship(
        lazy="raise", order_by="Material.position", cascade="all, delete-orphan",
        primaryjoin="and_(ServiceItem.id == foreign(Material.item_id), Material.situation_id.is_(None))",
    )
    questions: Mapped[list[ItemQuestion]] = relationship(
        lazy="raise", order_by="ItemQuestion.position", cascade="all, delete-orphan"
    )
    situations: Mapped[list[Situation]] = relationship(
        lazy="raise", order_by="Situation.position", cascade="all, delete-orphan"
    )


class ItemQuestion(Base):
    """情形问题 — one question asked to find a resident's situation (首次申领 / 补领 …)."""

    __tablename__ = "item_questions"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(200))
    options: Mapped[list[str]] = mapped_column(JSON, default=list)


class Situation(Base):
    """办理情形 (颗粒化) — one way an item is handled, reached by the answers in ``conditions``
    (question id → option; a question it does not name does not matter to it), with its own
    checklist, time limit (working days, 0 = 即办), fee and place of pickup."""

    __tablename__ = "situations"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    time_limit_days: Mapped[int | None] = mapped_column(Integer)
    fee: Mapped[str] = mapped_column(String(200), default="")
    pickup: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    materials: Mapped[list[Material]] = relationship(
        lazy="raise", order_by="Material.position", cascade="all, delete-orphan"
    )


class Material(Base):
    """材料 — one line of an item's materials checklist, or of one of its situations'."""

    __tablename__ = "materials"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id", ondelete="CASCADE"), index=True)
    situation_id: Mapped[int | None] = mapped_column(ForeignKey("situations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(String(200), default="")


class Bundle(Base):
    """一事联办 — several items a resident handles as one case, with one merged checklist."""

    __tablename__ = "bundles"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    items: Mapped[list[BundleItem]] = relationship(
        lazy="raise", order_by="BundleItem.position", cascade="all, delete-orphan"
    )


class BundleItem(Base):
    """One item of a bundle, in the order the case is served."""

    __tablename__ = "bundle_items"
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extension_point_id: Mapped[int | None] = mapped_column(ForeignKey("extension_points.id"))
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    available: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    parallel_consultations: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    windows: Mapped[list[CloudWindow]] = relationship(secondary=clerk_windows, lazy="raise")
    departments: Mapped[list[Department]] = relationship(
        secondary=supervisor_departments, lazy="raise"
    )
    expert_departments: Mapped[list[Department]] = relationship(secondary=expert_departments, lazy="raise")
    centres: Mapped[list[Centre]] = relationship(secondary=supervisor_centres, lazy="raise")
    # 两步验证 — TOTP (docs/security.md): the secret AES-GCM encrypted, set at enrolment and
    # on from ``totp_enabled_at``; the last time step used, so a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # 群众/企业 (role resident, server/domain/residents.py): the phone they sign in with, found
    # by its keyed hash and kept sealed; a firm's unified social credit code and name; the
    # version of the privacy notice they agreed to, and when.
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    firm_credit_code: Mapped[str | None] = mapped_column(String(18))
    firm_name: Mapped[str | None] = mapped_column(String(100))
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consent_at: Mapped[datetime | None]
    # Staff (supervisors): a mobile for alerts that reach people (docs/queue.md "Alerts that
    # reach people") — sealed in ``phone_sealed`` like a resident's, shown only masked.
    mobile_masked: Mapped[str | None] = mapped_column(String(20))


class AuthSession(Base):
    """登录会话 — one issued token. Revoking the row ends the token at once, on every node."""

    __tablename__ = "auth_sessions"
    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(30))


class RecoveryCode(Base):
    """备用码 — a single-use code for a lost phone; kept only as a keyed hash."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    salt: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Login attempts counted per key: an address (``ip:…``), an account from an address
    (``pair:…``) or an account from anywhere (``acct:…``). Counted atomically by one upsert."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


class KnownAddress(Base):
    """An address an account logged in from: its owner is not slowed down there while
    others guess the account's password from elsewhere."""

    __tablename__ = "login_known_addresses"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_success_at: Mapped[datetime]


class TicketCounter(Base):
    """Next ticket number per queue (centre × department) per service day."""

    __tablename__ = "ticket_counters"
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """号 — a resident's place in a department's cloud-window queue, and then their case."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_queue", "status", "centre_id", "department_id", "service_day"),
        Index("ix_tickets_window_status", "window_id", "status"),
        Index("ix_tickets_report", "service_day", "centre_id", "department_id"),  # 统计报表: period, scope
        Index("ix_tickets_point_day", "extension_point_id", "service_day"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12))
    service_day: Mapped[date] = mapped_column(Date)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    situation_id: Mapped[int | None] = mapped_column(ForeignKey("situations.id"))  # 办理情形, when found
    # 一事联办: the bundle this case handles; ``item_id``/``department_id`` are then the item and the
    # department being served now, and ``case_items`` holds every item of the case with its state.
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("bundles.id"), index=True)
    # ``source`` "point": taken by a community worker at their extension point; "direct" (屏对屏):
    # taken by the resident on their own phone, with no extension point. ``worker_id`` is who
    # took it and sits at the far end of the call: the worker, or that resident.
    source: Mapped[str] = mapped_column(String(10), default="point", server_default="point")
    extension_point_id: Mapped[int | None] = mapped_column(ForeignKey("extension_points.id"), index=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    resident: Mapped[dict[str, Any]] = mapped_column(JSON)  # name, note, masked numbers (domain/personal.py)
    resident_sealed: Mapped[str | None] = mapped_column(Text)  # ID and phone numbers, AES-256-GCM
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)  # keyed hash, exact search
    priority: Mapped[str | None] = mapped_column(String(20))
    callback: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"))
    taken_at: Mapped[datetime]
    # When it entered the queue it waits in now, if after its take (a transfer, a bundle case's next
    # department): its wait alert counts from here; its place in line still from ``taken_at``.
    queued_at: Mapped[datetime | None]
    called_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    window_id: Mapped[int | None] = mapped_column(ForeignKey("cloud_windows.id"))
    clerk_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recalls: Mapped[int] = mapped_column(Integer, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(String(30))
    result_note: Mapped[str | None] = mapped_column(Text)
    wait_alerted_at: Mapped[datetime | None]
    rating_score: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None]
    appointment_at: Mapped[datetime | None]  # 预约: the booked slot it entered the queue at (ahead of walk-ins)
    purged_at: Mapped[datetime | None]  # retention: documents deleted, personal data anonymised


class CaseItem(Base):
    """联办事项 — one item of a bundle case: its department, and once handled, how and by whom."""

    __tablename__ = "case_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | completed
    result: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(Text, default="")
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    completed_by_name: Mapped[str] = mapped_column(String(50), default="")
    window_id: Mapped[int | None] = mapped_column(ForeignKey("cloud_windows.id"))
    completed_at: Mapped[datetime | None]


class QueueState(Base):
    """The warning level last raised for a queue, so each crossing alerts once."""

    __tablename__ = "queue_states"
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(10), default="green")
    changed_at: Mapped[datetime | None]


class Alert(Base):
    """提醒 / 预警 — a wait-timeout alert or a yellow/red warning, sent to supervisors."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(10))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]
    # Pushed to the responsible supervisors through the notifier: when last, how many times
    # (an unacknowledged red warning is sent again every ``alert_renotify_minutes``).
    notified_at: Mapped[datetime | None]
    notify_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LedgerItem(Base):
    """督办事项 — a problem followed through: raised from a case, an extension point or by a
    supervisor (or a bad rating's 整改 work order), claimed, answered, visited, closed."""

    __tablename__ = "ledger_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    extension_point_id: Mapped[int | None] = mapped_column(ForeignKey("extension_points.id"))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    raised_by_name: Mapped[str] = mapped_column(String(50))
    raised_at: Mapped[datetime] = mapped_column(index=True)
    deadline: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)
    action_taken: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    visit_verdict: Mapped[str | None] = mapped_column(String(20))
    visit_note: Mapped[str | None] = mapped_column(Text)
    visited_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None]


class LedgerStep(Base):
    """One step of a 督办事项's history: who did what, when, saying what."""

    __tablename__ = "ledger_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("ledger_items.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class CaseMessage(Base):
    """通话内文字消息 — in-call chat, stored on the case (the ticket)."""

    __tablename__ = "case_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author_name: Mapped[str] = mapped_column(String(50))
    author_role: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20), default="call")
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class Document(Base):
    """材料 — one uploaded document of a case, filed under a checklist line (or "other")."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"))
    material_name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20), default="upload")
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    original_key: Mapped[str] = mapped_column(String(200))
    viewing_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="provided")
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]


class UploadSession(Base):
    """A resumable upload in progress: where it stands, so a broken link can carry on."""

    __tablename__ = "upload_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"))
    material_name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20), default="upload")
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    size: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))


class InvitationStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"


class Consultation(Base):
    """会商 — a clerk asking experts for help on one case."""

    __tablename__ = "consultations"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Invitation(Base):
    """会商邀请 — one expert invited to a consultation: answered in time, or expired."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_expert_status", "expert_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[InvitationStatus] = mapped_column(_enum(InvitationStatus, "invitation_status"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    in_main_call: Mapped[bool] = mapped_column(Boolean, default=False)
    decline_reason: Mapped[str | None] = mapped_column(String(500))


class ExpertOpinion(Base):
    """专家意见 — what an expert wrote on a case."""

    __tablename__ = "expert_opinions"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author_name: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class CallLink(Base):
    """通话链路 — how one participant's network carried one call: the worst grade seen, the
    seconds spent poor or fair, and the last sample (signaling/relay/quality.py grades it)."""

    __tablename__ = "call_links"
    __table_args__ = (Index("ix_call_links_ticket_user", "ticket_id", "user_id", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    grade: Mapped[str] = mapped_column(String(8))  # the last sample's
    worst_grade: Mapped[str] = mapped_column(String(8))
    poor_s: Mapped[int] = mapped_column(Integer, default=0)
    fair_s: Mapped[int] = mapped_column(Integer, default=0)
    sampled_s: Mapped[int] = mapped_column(Integer, default=0)
    loss_pct: Mapped[float | None]
    rtt_ms: Mapped[int | None] = mapped_column(Integer)
    bitrate_kbps: Mapped[int | None] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(index=True)
    last_at: Mapped[datetime]


class AuditEntry(Base):
    """审计日志 — every state change and every privileged read: who, what, when, from where."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_name: Mapped[str] = mapped_column(String(50), default="")
    action: Mapped[str] = mapped_column(String(50), index=True)
    target_type: Mapped[str] = mapped_column(String(30), default="")
    target_id: Mapped[str] = mapped_column(String(40), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The hash chain (docs/operations.md "Audit trail"): ``seq`` is the row's place in the
    # chain (1, 2, 3… in commit order; ``id`` order may differ on PostgreSQL), ``prev_hash`` the
    # hash of row ``seq - 1``, ``hash`` the SHA-256 of this row's canonical form.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The audit chain's last link, one row (id 1). Updating it is the chain's lock: writers
    of audit rows take turns here, at commit, across processes and nodes."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Notification(Base):
    """外发消息 — a text to a resident's phone (``sms``) or to staff (``staff``), kept with its
    delivery: the outbox (docs/operations.md, "Notifications"). The recipient is sealed."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(30))
    recipient_sealed: Mapped[str] = mapped_column(Text, default="")
    recipient_masked: Mapped[str] = mapped_column(String(40), default="")
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ChecklistLink(Base):
    """一次性告知 — an item's checklist sent to a resident's phone as a short link that opens
    without login until it expires. Only the token's hash is kept."""

    __tablename__ = "checklist_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    situation_id: Mapped[int | None] = mapped_column(ForeignKey("situations.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"))
    sent_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    phone_masked: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    opens: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    """预约 — a resident's booked slot in a queue; at its time it becomes a ticket ahead of walk-ins."""

    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_slot", "centre_id", "department_id", "slot_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    situation_id: Mapped[int | None] = mapped_column(ForeignKey("situations.id"))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    slot_start: Mapped[datetime]
    slot_end: Mapped[datetime]
    name: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(12), index=True)  # booked, queued, cancelled, missed
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(200), default="")


class SignInCode(Base):
    """短信验证码 — a one-time code texted to a resident's phone; only a keyed hash of the code is
    kept, with the tries made and when it was used."""

    __tablename__ = "sign_in_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]


class CertificateType(Base):
    """证照类型 — a kind of licence or certificate (食品经营许可证, 居住证 …): the item that renews
    it, and how many days before expiry its holders are texted (``reminder_days``, e.g. [90, 30, 7])."""

    __tablename__ = "certificate_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    reminder_days: Mapped[list[int]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Certificate(Base):
    """证照 — one licence or certificate held by a person or firm, imported by an administrator.
    The holder's phone and ID numbers are sealed (AES-256-GCM, like a ticket's resident), found
    again by their keyed hashes and shown masked. ``renewed_at`` and ``opted_out_at`` stop its
    reminders; a later expiry (re-imported) begins a new round of reminders."""

    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_type_number", "type_id", "number", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("certificate_types.id"))
    number: Mapped[str] = mapped_column(String(64))
    holder_name: Mapped[str] = mapped_column(String(100))
    holder_sealed: Mapped[str] = mapped_column(Text)  # {"phone", "id_number"?}
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20))
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    opted_out_at: Mapped[datetime | None]
    opted_out_by: Mapped[str | None] = mapped_column(String(10))  # holder | admin
    renewed_at: Mapped[datetime | None]
    renewal_source: Mapped[str | None] = mapped_column(String(10))  # case | admin | import
    renewal_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CertificateReminder(Base):
    """到期提醒 — one SMS for one rule (days before expiry) of one certificate's expiry, with the
    link it carries (only the token's hash is kept). Unique per (certificate, expiry, rule): sent
    once, even when two nodes scan at the same moment. ``renewed_at``: the renewal that followed."""

    __tablename__ = "certificate_reminders"
    __table_args__ = (
        Index("ix_certificate_reminders_once", "certificate_id", "expires_on", "days_before", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"))
    type_id: Mapped[int] = mapped_column(ForeignKey("certificate_types.id"))
    expires_on: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime] = mapped_column(index=True)
    link_expires_at: Mapped[datetime]
    opens: Mapped[int] = mapped_column(Integer, default=0)
    renewed_at: Mapped[datetime | None]


# 统计报表日汇总 — the report's daily rollups (server/domain/reports.py, docs/reports.md "Rollups"):
# a settled service day's ticket figures per dimension key and queue, and its waits by bucket.
ROLLUP_SUMS = ("tickets_n", "served_n", "no_shows_n", "transfers_sum", "wait_sum", "wait_n",
               "handling_sum", "handling_n", "ratings_n", "good_part", "bad_n")

report_rollups = Table(
    "report_rollups",
    Base.metadata,
    Column("service_day", Date, nullable=False),
    Column("dimension", String(20), nullable=False),
    Column("key", Integer),
    Column("centre_id", Integer, nullable=False),
    Column("department_id", Integer, nullable=False),
    Column("monthly", Boolean, nullable=False),  # a whole month's row (service_day: its first day)
    *(Column(name, Float, nullable=False) for name in ROLLUP_SUMS),
    Index("ix_report_rollups_day", "dimension", "monthly", "service_day"),
)

report_rollup_waits = Table(
    "report_rollup_waits",
    Base.metadata,
    Column("service_day", Date, nullable=False),
    Column("dimension", String(20), nullable=False),
    Column("key", Integer),
    Column("centre_id", Integer, nullable=False),
    Column("department_id", Integer, nullable=False),
    Column("monthly", Boolean, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("total", Float, nullable=False),
    Index("ix_report_rollup_waits_day", "dimension", "monthly", "service_day"),
)

#: A whole month's waits by bucket over every queue: a year read by whom sees every queue.
report_rollup_month_waits = Table(
    "report_rollup_month_waits",
    Base.metadata,
    Column("service_day", Date, nullable=False),  # the month's first day
    Column("dimension", String(20), nullable=False),
    Column("key", Integer),
    Column("bucket", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("total", Float, nullable=False),
    Index("ix_report_rollup_month_waits_day", "dimension", "service_day"),
)


class ReportRollupDay(Base):
    """A service day whose rollups are built: the report reads them instead of its tickets."""

    __tablename__ = "report_rollup_days"

    service_day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime]


class ReportRollupMonth(Base):
    """A month whose days are all rolled up and summed into its own rows (a year reads those)."""

    __tablename__ = "report_rollup_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    rolled_at: Mapped[datetime]


class AppendOnly(RuntimeError):
    """Audit rows are written once, by ``server.domain.audit``, and never changed."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _audit_rows_are_append_only(_mapper: Any, _connection: Any, entry: AuditEntry) -> None:
    raise AppendOnly(f"audit row {entry.id} cannot be changed or deleted")


__all__ = [
    "Alert", "AppendOnly", "Appointment", "Certificate", "CertificateReminder", "CertificateType", "AuditChainHead", "AuditEntry", "Base", "Bundle", "BundleItem", "CaseItem", "CaseMessage", "ChecklistLink", "Consultation", "Document", "ExpertOpinion", "Invitation",
    "InvitationStatus", "Notification", "expert_departments", "UploadSession", "Centre", "CentreLevel", "CloudWindow", "Department",
    "ExtensionPoint", "AuthSession", "ItemQuestion", "KnownAddress", "LoginThrottle", "Material", "QueueState", "ReportRollupDay", "ReportRollupMonth", "Role", "ServiceItem",
    "SignInCode", "Situation", "Ticket", "TicketCounter", "TicketStatus", "User", "clerk_windows",
    "report_rollup_month_waits", "report_rollup_waits", "report_rollups", "supervisor_centres", "supervisor_departments", "window_departments",
]
