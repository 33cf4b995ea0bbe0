"""Response bodies: what each route answers, one pydantic model per shape.

They go into the OpenAPI document, from which the browser client's types are generated
(web-client/src/api/schema.d.ts), and while ``check_responses`` is on (the tests) every JSON
answer is validated against its route's model (server/api/base.py), so a handler cannot answer
something the document does not say. The models mirror ``server/domain/views.py`` and the
domain's ``*_view`` functions key for key (``extra="forbid"``): a key that is sometimes left
out is ``absent()`` (optional, never null), one that may be null says ``| None``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from server.models import CentreLevel, InvitationStatus, Role, TicketStatus


class Answer(BaseModel):
    """A response body: exactly the keys named."""

    model_config = ConfigDict(extra="forbid")


def _optional_key(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str | None = None) -> Any:
    """A key the answer leaves out rather than sets to null (``key?: T`` in TypeScript)."""
    return Field(default=None, description=description, json_schema_extra=_optional_key)


Priority = Literal["elderly", "disabled", "pregnant", "military"]
CompletionResult = Literal["done", "materials_incomplete", "not_eligible", "consultation_only"]
WarningLevel = Literal["green", "yellow", "red"]
DocumentStatus = Literal["provided", "accepted", "rejected"]
CaseRole = Literal["worker", "clerk", "expert"]
LinkGrade = Literal["good", "fair", "poor"]


# --- organisation and catalogue --------------------------------------------------------------


class NamedRef(Answer):
    """Something shown by its name: an extension point, an expert's department, a case's item."""

    id: int
    name: str


class DepartmentRef(Answer):
    id: int
    code: str
    name: str


class CloudWindow(Answer):
    """云窗口 — a cloud window (``views.window_view``)."""

    id: int
    name: str
    centre_id: int
    active: bool
    tidal: bool
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    opened_by_id: int | None
    department_ids: list[int]


class Centre(Answer):
    """区级云办中心 or 镇街便民中心, with its extension points and windows."""

    id: int
    name: str
    level: CentreLevel
    parent_id: int | None
    extension_points: list[NamedRef]
    windows: list[CloudWindow]


class Org(Answer):
    departments: list[DepartmentRef]
    centres: list[Centre]


class Material(Answer):
    """One line of an item's 一次性告知 checklist."""

    id: int
    name: str
    required: bool
    note: str


class ItemQuestion(Answer):
    """A question asked to find the resident's situation (首次申领 / 补领 …)."""

    id: int
    text: str
    options: list[str]


class Situation(Answer):
    """办理情形 (颗粒化) — one way an item is handled (``views.situation_view``)."""

    id: int
    item_id: int
    name: str
    conditions: dict[str, str] = Field(description="the answers it is for: question id → option "
                                                   "(a question not named does not matter to it)")
    materials: list[Material]
    time_limit_days: int | None = Field(description="承诺时限 in working days; 0 = 即办; null = not stated")
    fee: str = Field(description="收费, as the guide states it (不收费 …)")
    pickup: str = Field(description="where the result is picked up (or how it is sent)")
    active: bool


class ServiceItem(Answer):
    """事项 — a service item (``views.item_view``): its general checklist, and when it has
    situations, the questions that lead to them and each one's own checklist."""

    id: int
    code: str
    name: str
    initials: str
    description: str
    department_id: int
    level: CentreLevel
    active: bool
    produces: list[str] = Field(description="the certificates / results it issues (营业执照 …): a later item of a "
                                            "一事联办 bundle gets them inside the government")
    materials: list[Material]
    questions: list[ItemQuestion]
    situations: list[Situation] = Field(description="in a list: the active ones (an admin may ask for all); "
                                                    "an item's own page: all, stopped ones with active false "
                                                    "(a case may have recorded one)")


# --- accounts ----------------------------------------------------------------------------------


class UserWindow(Answer):
    """A window a clerk staffs, with the departments it serves."""

    id: int
    name: str
    centre_id: int
    tidal: bool
    active: bool
    departments: list[DepartmentRef]


class User(Answer):
    """An account (``accounts.user_view``)."""

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    extension_point_id: int | None
    specialties: list[str]
    available: bool
    parallel_consultations: bool
    windows: list[UserWindow]
    departments: list[DepartmentRef]
    centre_ids: list[int]
    mobile: str | None = Field(description="staff: the mobile alerts reach, masked (138****5678)")


class TwoFactorStatus(Answer):
    """两步验证: whether the account has it on, must have it, may have it (its role)."""

    enrolled: bool
    required: bool
    available: bool
    recovery_codes_left: int = absent("only when enrolled")


class Me(User):
    """The signed-in user, as ``/api/me`` and the login answer show them."""

    two_factor: TwoFactorStatus
    service_timezone: str = Field(description="IANA name: the pages show clock times in it")


class Slot(Answer):
    start: datetime
    end: datetime
    left: int = Field(description="places still free")


class Appointment(Answer):
    """预约 (``appointments.view``): booked → queued (ticket_id) at its slot, or cancelled / missed."""

    id: int
    item_id: int
    situation_id: int | None
    centre_id: int
    department_id: int
    slot_start: datetime
    slot_end: datetime
    name: str
    state: Literal["booked", "queued", "cancelled", "missed"]
    ticket_id: int | None
    created_at: datetime
    note: str = Field(description="why it was missed")


class CodeSent(Answer):
    expires_in_s: int = Field(description="the code works this long")
    resend_after_s: int = Field(description="another code may be asked for after this")


class PrivacyNotice(Answer):
    version: str
    title: str
    text: str


class SignedIn(Answer):
    token: str
    expires_at: datetime
    user: Me


class TwoFactorEnrolment(Answer):
    secret: str
    otpauth_uri: str
    qr_code: str = Field(description="an SVG QR code as a data: URL")
    issuer: str
    algorithm: str
    digits: int
    period: int


class RecoveryCodes(Answer):
    recovery_codes: list[str] = Field(description="shown this once")


class TwoFactorReset(Answer):
    id: int
    username: str
    two_factor: TwoFactorStatus


class Clerk(Answer):
    """A clerk a supervisor may send to a tidal window."""

    id: int
    username: str
    display_name: str
    windows: list[UserWindow]


# --- tickets -----------------------------------------------------------------------------------


class TicketResident(Answer):
    """The resident as a ticket shows them: ID number and phone always masked; the name in full
    only to those serving the case, the note only to them."""

    name: str
    masked: Literal[True]
    id_number: str = absent()
    phone: str = absent()
    note: str = absent()


class ResidentDetails(Answer):
    """办事群众完整信息 — the one audited read of the resident in full."""

    ticket_id: int
    masked: Literal[False]
    name: str
    id_number: str = absent()
    phone: str = absent()
    note: str = absent()


class TicketRating(Answer):
    score: int
    comment: str | None
    at: datetime


class Ticket(Answer):
    """号 — a ticket (``views.ticket_view``)."""

    id: int
    number: str
    service_day: date
    status: TicketStatus
    centre_id: int
    department_id: int
    item_id: int
    situation_id: int | None = Field(description="办理情形, when the worker found it")
    bundle_id: int | None = Field(description="一事联办: the bundle this case handles (item_id and department_id "
                                            "are then the item and department serving it now)")
    source: Literal["point", "direct"] = Field(description="point: taken by a community worker at an extension "
                                               "point; direct (屏对屏): by the resident on their own phone")
    extension_point_id: int | None = Field(description="none for a direct ticket")
    worker_id: int = Field(description="who took it and sits at the far end of the call: the worker, or "
                                       "the resident themselves for a direct ticket")
    resident: TicketResident
    priority: Priority | None
    callback: bool
    appointment_at: datetime | None = Field(description="预约: the booked slot it entered the queue at")
    taken_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    window_id: int | None
    clerk_id: int | None
    recalls: int
    transfers: int
    result: CompletionResult | None
    result_note: str | None
    rating: TicketRating | None


class PlacedTicket(Ticket):
    """A ticket with its place in the queue (1 = next; 0 once no longer waiting)."""

    position: int
    estimated_wait_s: int


class TicketDetail(PlacedTicket):
    window_name: str | None = Field(description="the window it was called to")


class Message(Answer):
    """A text message of a call (or of the experts' consultation channel)."""

    id: int
    ticket_id: int
    author_id: int
    author_name: str
    author_role: Role
    channel: Literal["call", "consultation"]
    text: str
    at: datetime


# --- queues, the wall, alerts --------------------------------------------------------------------


class Queue(Answer):
    """One served queue: a centre × department with windows."""

    centre_id: int
    department_id: int
    windows_open: int
    waiting: int
    serving: int
    longest_wait_s: int
    warning_level: WarningLevel


class Alert(Answer):
    id: int
    kind: Literal["wait_timeout", "warning"]
    level: Literal["yellow", "red"]
    centre_id: int
    department_id: int
    ticket_id: int | None
    message: str
    detail: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by_id: int | None


class AlertByLink(Alert):
    """An alert as its pushed link shows it: with its queue's names and whom it was sent to."""

    centre_name: str
    department_name: str
    sent_to: str = Field(description="the supervisor the link was sent to")


class DashboardRow(Answer):
    department_id: int
    code: str
    name: str
    waiting: int
    serving: int
    longest_wait_s: int
    warning_level: WarningLevel
    served_today: int
    average_wait_s: float | None
    average_handling_s: float | None
    rating_average: float | None
    ratings_today: int


class DashboardTotals(Answer):
    waiting: int
    serving: int
    served_today: int


class Dashboard(Answer):
    """大屏 — the wall display's figures."""

    at: datetime
    service_open: bool
    departments: list[DashboardRow]
    totals: DashboardTotals
    tidal_windows: list[CloudWindow]
    alerts: list[Alert]


class LinkParticipant(Answer):
    """One side of a call's link, by role only (no personal data on the wall)."""

    role: CaseRole
    grade: LinkGrade
    worst_grade: LinkGrade
    poor_s: int
    loss_pct: float | None
    rtt_ms: int | None
    bitrate_kbps: int | None


class PoorCall(Answer):
    ticket_id: int
    number: str
    status: TicketStatus
    department: str
    extension_point: str
    extension_point_id: int | None = Field(description="none: a resident on their own phone (屏对屏)")
    centre_id: int
    participants: list[LinkParticipant]


class PointLinks(Answer):
    extension_point_id: int | None = Field(description="none: residents on their own phone (屏对屏)")
    name: str
    centre_id: int
    calls_today: int
    poor_calls_today: int
    poor_s_today: int


class LinkWall(Answer):
    at: datetime
    poor_now: list[PoorCall]
    extension_points: list[PointLinks]


# --- the network (1 + 17 + 288) and extension points ---------------------------------------------


class ExtensionPoint(Answer):
    """延伸点 (``points.point_view``): its town centre, the office's contact phone, whether it is in
    use, and when a worker of it last logged in or had a live connection."""

    id: int
    name: str
    centre_id: int
    address: str
    contact_phone: str
    active: bool
    last_connected_at: datetime | None = Field(description="none: never connected")


class NetworkPoint(ExtensionPoint):
    """One point on the network view (``network.network``)."""

    staff: int = Field(description="active worker accounts bound to the point")
    online: int = Field(description="of them, connected now")
    online_names: list[str] = Field(description="the display names of those connected now")
    calls_now: int = Field(description="its tickets called or being served")
    tickets_today: int = Field(description="its tickets of today's service day")
    silent: bool = Field(description="in use, nobody online, and not connected for silent_days (or never)")


class NetworkFigures(Answer):
    points: int = Field(description="points in use (stopped ones not counted)")
    online_points: int = Field(description="points in use with a worker connected now")
    silent_points: int
    disabled_points: int
    staff: int
    online: int = Field(description="workers connected now")
    calls_now: int
    tickets_today: int


class NetworkTown(NetworkFigures):
    centre_id: int
    name: str
    extension_points: list[NetworkPoint]


class NetworkTotals(NetworkFigures):
    towns: int


class Network(Answer):
    """网点一览 — each town centre in view with its points, and the totals."""

    at: datetime
    service_day: date
    silent_days: int
    towns: list[NetworkTown]
    totals: NetworkTotals


# --- documents -----------------------------------------------------------------------------------


class UploadProgress(Answer):
    """Where a resumable upload stands: continue from ``offset``."""

    upload_id: str
    offset: int
    size: int
    chunk_bytes: int
    expires_at: datetime = absent("while the upload may still go on")
    document_id: int = absent("once filed: the document it became")


class CaseDocument(Answer):
    """材料 — one document of a case (``documents.document_view``)."""

    id: int
    ticket_id: int
    material_id: int | None
    material_name: str
    source: Literal["upload", "capture"]
    uploader_id: int
    uploaded_at: datetime
    content_type: str
    size: int
    width: int | None
    height: int | None
    page_count: int | None
    sha256: str
    status: DocumentStatus
    review_reason: str | None
    reviewed_by_id: int | None
    reviewed_at: datetime | None


class FiledDocument(CaseDocument):
    duplicate: Literal[True] = absent("the file was one the case already had: this is that document")


class ListedDocument(CaseDocument):
    thumbnail_url: str = Field(description="short-lived")


class DocumentUrls(Answer):
    viewing: str
    thumbnail: str
    original: str


class OpenedDocument(CaseDocument):
    urls: DocumentUrls = Field(description="short-lived")


class BundleItemRef(Answer):
    id: int
    code: str
    name: str
    department_id: int
    level: CentreLevel
    active: bool = Field(description="false: the item is stopped, and the bundle is not offered until it is back")


class MergedLine(Answer):
    """A line of a bundle's merged checklist: asked once for every item that needs it."""

    name: str
    required: bool
    note: str
    material_ids: list[int]
    item_ids: list[int]
    issued_by: int | None = Field(description="the earlier item of the bundle that issues this material: "
                                  "passed on inside the government, not asked of the resident")


class Bundle(Answer):
    """一事联办 — a bundle with its items, merged checklist and what one case saves."""

    id: int
    code: str
    name: str
    description: str
    active: bool
    level: CentreLevel = Field(description="district when any item is a district one: where its cases queue")
    items: list[BundleItemRef]
    department_ids: list[int] = Field(description="in the order they serve a case")
    checklist: list[MergedLine]
    materials_total: int = Field(description="the items' checklist lines together")
    materials_merged: int = Field(description="lines of the merged checklist the resident brings")
    materials_saved: int
    trips_saved: int = Field(description="departments − 1: one visit instead of one per department")


class BundleReportLine(Answer):
    bundle_id: int
    code: str
    name: str
    items: int
    departments: int
    cases: int = Field(description="taken and not cancelled")
    completed: int
    materials_saved_per_case: int
    trips_saved_per_case: int
    materials_saved: int = Field(description="by the completed cases")
    trips_saved: int


class BundleReportTotals(Answer):
    cases: int
    completed: int
    materials_saved: int
    trips_saved: int


class BundleReport(Answer):
    bundles: list[BundleReportLine]
    totals: BundleReportTotals


ReportDimension = Literal["centre", "town", "extension_point", "department", "clerk", "item"]
ReportPeriodKind = Literal["day", "week", "month", "year"]


class ReportPeriod(Answer):
    start: date
    end: date = Field(description="the period's last day (inclusive)")
    label: str


class ReportMetric(Answer):
    """One metric of the report, as docs/reports.md defines it."""

    key: str
    label: str
    unit: Literal["count", "seconds", "percent"]
    source: str = Field(description="the table it is counted over")
    dimensions: list[ReportDimension] = Field(description="the dimensions its source knows (blank in the others)")
    series: bool = Field(description="whether the trend series has it")


class ReportCell(Answer):
    current: float | None
    previous: float | None = Field(description="the same period last year")
    delta: float | None = Field(description="current − previous")
    change_pct: float | None = Field(description="同比: (current − previous) / previous × 100; null when previous is 0 or null")


class ReportRow(Answer):
    key: int | None = Field(description="the dimension's id; null: none (a 屏对屏 ticket's point, an uncalled ticket's clerk)")
    name: str
    values: dict[str, ReportCell] = Field(description="metric key → its cell")


class ReportPending(Answer):
    key: str
    label: str


class ReportSeries(Answer):
    buckets: list[str] = Field(description="months of a year, days of a month or week, the day itself")
    current: dict[str, list[float | None]]
    previous: dict[str, list[float | None]]


class Report(Answer):
    """统计报表 — every metric per row of the dimension and in total, this period and last year's."""

    dimension: ReportDimension
    dimension_label: str
    period: ReportPeriodKind
    period_label: str
    current: ReportPeriod
    previous: ReportPeriod
    metrics: list[ReportMetric]
    pending: list[ReportPending] = Field(description="metrics whose tables are not there yet")
    rows: list[ReportRow]
    total: ReportRow
    series: ReportSeries | None


class CaseItem(Answer):
    """联办事项 — one item of a bundle case, and once handled, how, by whom and when."""

    id: int
    item_id: int
    item_code: str
    item_name: str
    department_id: int
    department_name: str
    position: int
    state: Literal["pending", "completed"]
    state_name: str
    result: CompletionResult | None
    result_name: str | None
    note: str
    completed_by: str | None
    window_name: str | None
    completed_at: datetime | None
    mine: bool = Field(description="pending, and the reader's window may complete it now")


class ChecklistLine(Answer):
    material_id: int | None = Field(description="null: the 其他材料 line")
    name: str
    required: bool
    note: str
    state: Literal["missing", "provided", "accepted", "rejected"]
    state_name: str
    document_ids: list[int]
    reason: str | None
    item_ids: list[int] = absent("一事联办: the case's items that need it (a shared material is asked once)")
    issued_by: int | None = absent("一事联办: the earlier item of the case that issues this material "
                                   "(passed on inside the government; not required of the resident)")


# --- experts -------------------------------------------------------------------------------------


class PoolExpert(Answer):
    """An expert of the pool as the search lists them."""

    id: int
    display_name: str
    specialties: list[str]
    departments: list[NamedRef]
    available: bool
    parallel_consultations: bool
    presence: Literal["online", "busy", "offline"]
    open_consultations: int
    free: bool = Field(description="available, online and not already in a consultation (unless they allow several)")


class ExpertSettings(Answer):
    id: int
    available: bool
    parallel_consultations: bool


class Invitation(Answer):
    """An invitation to a case's consultation (``experts.invitation_view``)."""

    id: int
    consultation_id: int
    ticket_id: int
    expert_id: int
    invited_by_id: int
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    response_seconds: float | None
    joined_at: datetime | None
    left_at: datetime | None
    in_main_call: bool
    reason: str | None = Field(description="why the expert declined")


class NamedInvitation(Invitation):
    expert_name: str


class InvitationSent(NamedInvitation):
    invited_by_name: str
    note: str


class DocumentBrief(Answer):
    id: int
    material_id: int | None
    material_name: str
    status: DocumentStatus
    content_type: str
    uploaded_at: datetime


class CaseSummary(Answer):
    """What an invited expert needs to decide: the case, the item, the checklist, the documents."""

    ticket_id: int
    number: str
    status: TicketStatus
    item: NamedRef
    situation: NamedRef | None = Field(description="办理情形, when the case records one")
    department: NamedRef
    resident_name: str
    checklist: list[ChecklistLine]
    documents: list[DocumentBrief]


class AcceptedInvitation(NamedInvitation):
    case: CaseSummary


class InvitationToMe(Invitation):
    """An invitation as the expert reads it: who asks, why, and the case."""

    note: str
    invited_by_name: str
    case: CaseSummary
    now: datetime = Field(description="the server's clock, to count down expires_at")


class ConsultationCreated(Answer):
    id: int
    ticket_id: int
    note: str
    created_at: datetime
    invitations: list[InvitationSent]


class ExpertOpinion(Answer):
    """专家意见."""

    id: int
    ticket_id: int
    expert_id: int
    author_name: str
    text: str
    at: datetime


class ConsultationNote(Answer):
    id: int
    note: str
    created_by_id: int
    created_at: datetime


class TimelineEntry(Answer):
    at: datetime
    kind: Literal["invited", "accepted", "declined", "expired", "joined", "left", "opinion"]
    expert_id: int
    expert_name: str
    by_id: int = absent("invited: who invited")
    by_name: str = absent("invited: who invited")
    invitation_id: int = absent()
    response_seconds: float | None = absent("accepted, declined")
    opinion_id: int = absent()
    text: str = absent("opinion")


class ConsultationRecord(Answer):
    """会商记录 — a case's consultations as a timeline."""

    ticket_id: int
    consultations: list[ConsultationNote]
    invitations: list[NamedInvitation]
    opinions: list[ExpertOpinion]
    timeline: list[TimelineEntry]


# --- audit, health, the document itself ------------------------------------------------------------


class AuditEntry(Answer):
    """One row of the audit trail."""

    id: int
    seq: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    target_type: str
    target_id: str
    ip: str
    detail: dict[str, Any]
    hash: str


class ChainHead(Answer):
    seq: int
    hash: str


class ChainBreak(Answer):
    kind: Literal["edited", "deleted", "reordered", "truncated", "anchor"]
    seq: int
    id: int | None
    message: str


class AuditVerdict(Answer):
    """What verifying the audit hash chain found."""

    intact: bool
    rows: int
    head: ChainHead
    anchors_checked: int
    problem: ChainBreak | None
    message: str


DependencyState = Literal["ok", "unavailable"]


class Health(Answer):
    """Also the body of the 503 while a dependency is down."""

    status: DependencyState
    database: str = Field(description="the database's dialect")
    dependencies: dict[str, DependencyState] = Field(description="database, redis (when configured), storage")


class IceServer(Answer):
    """One W3C ``RTCIceServer`` dictionary, ready for ``new RTCPeerConnection({iceServers})``.
    STUN entries carry ``urls`` only; TURN entries add the short-lived credential."""

    urls: list[str] = Field(description="stun:/turn:/turns: URLs")
    username: str = absent("TURN only: '<expiry unix time>:u<user id>'")
    credential: str = absent("TURN only: base64(HMAC-SHA1(secret, username))")
    credentialType: Literal["password"] = absent("TURN only")


class IceServers(Answer):
    ice_servers: list[IceServer] = Field(description="empty when none is configured (a LAN reaches the relay)")
    ice_transport_policy: Literal["all", "relay"] = Field(
        description="the RTCConfiguration iceTransportPolicy for this user: relay = media only through TURN "
                    "(YUNBANG_ICE_RELAY_ROLES)")
    ttl_seconds: int = Field(description="how long TURN credentials are valid: fetch again before then")


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This document (OpenAPI 3.1)."""


# Shapes the document lists though no route answers exactly them: the common part of several.
SHARED: tuple[type[BaseModel], ...] = (Invitation,)


NotificationState = Literal["held", "pending", "sent", "failed"]


class Notification(Answer):
    """One message of the outbox (the recipient masked)."""

    id: int
    created_at: datetime
    channel: Literal["sms", "staff"]
    kind: str
    to: str
    text: str
    provider: str
    state: NotificationState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None


class Outbox(Answer):
    messages: list[Notification]
    counts: dict[NotificationState, int]


class ChecklistSent(Answer):
    """一次性告知 sent: the link's record (the number masked) and its SMS in the outbox."""

    id: int
    item_id: int
    situation_id: int | None
    ticket_id: int | None
    to: str
    expires_at: datetime
    notification_id: int


class ChecklistMaterial(Answer):
    name: str
    required: bool
    note: str


class ChecklistItem(Answer):
    name: str
    description: str


class ChecklistSituation(Answer):
    name: str
    time_limit_days: int | None
    fee: str
    pickup: str


class PublicChecklist(Answer):
    """What a 一次性告知 link shows, without login: the situation's checklist when it names one."""

    item: ChecklistItem
    situation: ChecklistSituation | None
    questions: list[ItemQuestion] = Field(description="when the link names no situation and the item has "
                                                      "some: the questions the resident may answer (resolve)")
    department: str
    centre: str | None
    materials: list[ChecklistMaterial]
    sent_at: datetime
    expires_at: datetime


# --- 督办 ledger -----------------------------------------------------------------------------------


class LedgerStep(Answer):
    action: Literal["raise", "claim", "answer", "visit", "reopen", "close", "escalate"]
    action_name: str
    actor: str
    note: str
    at: datetime


class LedgerItem(Answer):
    """督办事项 (``ledger.view``): open → claimed → answered → visited → closed; a bad return visit
    reopens it (``reopened`` counts)."""

    id: int
    source: Literal["case", "point", "supervisor", "rating"]
    source_name: str
    category: str
    category_name: str
    title: str
    detail: str
    ticket_id: int | None
    extension_point_id: int | None
    centre_id: int
    department_id: int
    raised_by: str
    raised_at: datetime
    deadline: datetime
    state: Literal["open", "claimed", "answered", "visited", "closed"]
    state_name: str
    overdue: bool = Field(description="past the deadline and not answered yet")
    claimed_by_id: int | None
    answer: str | None
    action_taken: str | None
    answered_at: datetime | None
    visit_verdict: Literal["satisfied", "unsatisfied"] | None
    visit_note: str | None
    closed_at: datetime | None
    reopened: int
    escalation: int = Field(description="0; 1: sent to the department's supervisors; 2: to the centre's head")
    history: list[LedgerStep] = absent("the item's steps (one item's page)")


class LedgerDepartment(Answer):
    department_id: int
    department_name: str
    open: int
    claimed: int
    answered: int
    visited: int
    closed: int
    overdue: int
    oldest_open_hours: float | None


class Rectification(Answer):
    bad_ratings: int
    answered: int
    on_time: int
    on_time_rate: float | None = Field(description="answered by the deadline / bad ratings (null: none)")


class LedgerSummary(Answer):
    departments: list[LedgerDepartment]
    total: int
    overdue: int
    rectification: Rectification


# --- 证照到期提醒 (server/domain/certificates.py, docs/reminders.md)


class CertificateType(Answer):
    """证照类型: the item that renews it and its reminder rules (days before expiry, tightest last)."""

    id: int
    name: str
    item_id: int
    item_name: str
    item_code: str
    reminder_days: list[int]
    active: bool
    certificates: int = Field(description="certificates of this type in the registry")


class ImportProblem(Answer):
    row: int = Field(description="the row number as the spreadsheet shows it (the header is row 1)")
    column: str
    reason: str


class ImportResult(Answer):
    """导入结果: the good rows imported (created, updated or unchanged), each bad row's problems."""

    rows: int = Field(description="data rows read (blank rows left out)")
    imported: int
    created: int
    updated: int
    unchanged: int
    bad_rows: int
    errors: list[ImportProblem]


class CertificateImport(ImportResult):
    """证照导入结果 (server/domain/certificates.py)."""


class PointImport(ImportResult):
    """延伸点导入结果 (server/domain/points.py)."""


class SentReminder(Answer):
    days_before: int
    sent_at: datetime


class Certificate(Answer):
    """证照 in the registry: holder, phone and ID number masked."""

    id: int
    type_id: int
    type: str
    number: str
    holder: str
    phone: str
    id_number: str | None
    expires_on: date
    days_left: int
    opted_out_at: datetime | None
    opted_out_by: Literal["holder", "admin"] | None
    renewed_at: datetime | None
    renewal_source: Literal["case", "admin", "import"] | None
    renewal_ticket_id: int | None
    reminders: list[SentReminder] = Field(description="sent for the current expiry")
    updated_at: datetime


class Certificates(Answer):
    certificates: list[Certificate]
    total: int = Field(description="all that match the filters")


class ReminderFigures(Answer):
    reminders: int
    certificates: int = Field(description="rounds of reminders: a certificate's expiry reminded")
    renewed: int = Field(description="of those, renewed within within_days of a reminder")
    renewal_rate: float
    opted_out: int


class RuleCount(Answer):
    days_before: int
    reminders: int


class ReminderTypeLine(ReminderFigures):
    type_id: int
    name: str
    by_rule: list[RuleCount]


class ReminderMonthLine(ReminderFigures):
    month: str = Field(description="YYYY-MM, local time")


class ReminderReport(Answer):
    start: date
    end: date
    within_days: int
    types: list[ReminderTypeLine]
    months: list[ReminderMonthLine]
    total: ReminderFigures


class ReminderCertificate(Answer):
    type: str
    number: str = Field(description="masked")
    holder: str = Field(description="masked")
    expires_on: date
    days_left: int
    opted_out: bool
    renewed: bool


class ReminderItem(Answer):
    id: int
    name: str
    description: str
    level: CentreLevel
    active: bool


class PublicReminder(Answer):
    """What a reminder's link shows, without login."""

    certificate: ReminderCertificate
    item: ReminderItem
    department: str
    materials: list[ChecklistMaterial]
    sent_at: datetime
    expires_at: datetime
