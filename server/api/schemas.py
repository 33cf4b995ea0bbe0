"""Request bodies and query strings, validated with pydantic; their JSON Schemas go into the
OpenAPI document. Ids are `Id` (what the database can hold) and every string must be storable
(`server.inputs`): out-of-range ids and NUL characters are invalid input, never a database error."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from server.domain.experts import MAX_NOTE, MAX_OPINION
from server.inputs import Id, Instant, Storable
from server.models import CentreLevel, InvitationStatus, TicketStatus


class Body(Storable):
    """A JSON body: exactly the fields named, each of its own JSON type (no "5" for 5)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class Query(Storable):
    """A query string: parameters it does not name are ignored (a cache-buster, say)."""

    model_config = ConfigDict(extra="ignore")


class ResidentPhone(Body):
    phone: str = Field(min_length=1, max_length=20, description="中国大陆 11 位手机号")


class FirmIn(Body):
    credit_code: str = Field(min_length=1, max_length=18, description="统一社会信用代码（18 位）")
    name: str = Field(min_length=1, max_length=100, description="企业名称")


class AppointmentIn(Body):
    item_id: Id
    situation_id: Id | None = None
    centre_id: Id | None = Field(default=None, description="a town item: the town centre")
    slot_start: Instant = Field(description="a slot's start as /api/appointments/slots gives it (ISO 8601 with offset)")
    name: str = Field(min_length=1, max_length=50, description="办事人姓名")


class SlotQuery(Query):
    item_id: Id
    centre_id: Id | None = None
    day: date | None = Field(default=None, description="one service day (YYYY-MM-DD, the centre's time zone); "
                                                      "without it every day that may be booked")


class ResidentSignIn(Body):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(min_length=1, max_length=10, description="短信中的 6 位验证码")
    consent: bool = Field(default=False, description="已阅读并同意个人信息保护告知书（首次登录及告知书更新后必须）")
    firm: FirmIn | None = Field(default=None, description="以企业身份办事时填写")


class Login(Body):
    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=200)
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$",
                            description="已开启两步验证的账号：验证器上的 6 位验证码")
    recovery_code: str | None = Field(default=None, min_length=10, max_length=20,
                                      description="或一个备用码（每个只能用一次）")

    @model_validator(mode="after")
    def one_second_factor(self) -> Login:
        if self.otp and self.recovery_code:
            raise ValueError("give either otp or recovery_code, not both")
        return self


class OtpCode(Body):
    otp: str = Field(pattern=r"^[0-9]{6}$", description="验证器上当前的 6 位验证码")


class TwoFactorOff(Body):
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="验证器上的 6 位验证码")
    password: str | None = Field(default=None, min_length=1, max_length=200, description="或当前密码")

    @model_validator(mode="after")
    def exactly_one(self) -> TwoFactorOff:
        if (self.otp is None) == (self.password is None):
            raise ValueError("give either otp or password")
        return self


class Resident(Body):
    name: str = Field(min_length=1, max_length=50, description="办事群众姓名")
    id_number: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$", description="身份证号")
    phone: str | None = Field(default=None, pattern=r"^[0-9+\- ]{5,20}$")
    note: str | None = Field(default=None, max_length=200)


class TakeTicket(Body):
    item_id: Id | None = Field(default=None, description="the item; or bundle_id instead")
    bundle_id: Id | None = Field(default=None, description="一事联办: the bundle, instead of item_id")
    situation_id: Id | None = Field(default=None, description="办理情形（事项有情形时，由问题的回答得出）")
    resident: Resident
    priority: Literal["elderly", "disabled", "pregnant", "military"] | None = None
    centre_id: Id | None = Field(default=None, description="屏对屏: the town centre for a town item")


class ItemResultIn(Body):
    item_id: Id
    result: Literal["done", "materials_incomplete", "not_eligible", "consultation_only"] = "done"
    note: str = Field(default="", max_length=2000)


class CompleteItems(Body):
    items: list[ItemResultIn] = Field(min_length=1, max_length=20,
                                      description="一事联办: the case's items of this window's departments")


class Transfer(Body):
    department_id: Id
    centre_id: Id | None = None
    reason: str = Field(default="", max_length=200)


class Complete(Body):
    result: Literal["done", "materials_incomplete", "not_eligible", "consultation_only"] = "done"
    note: str = Field(default="", max_length=2000)


class Cancel(Body):
    reason: str = Field(default="", max_length=200)


class Rating(Body):
    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class OpenTidal(Body):
    department_id: Id
    clerk_id: Id
    centre_id: Id | None = None
    minutes: int | None = Field(default=None, ge=5, le=720)
    name: str | None = Field(default=None, max_length=100)


class MaterialIn(Body):
    id: Id | None = Field(default=None, description="the existing line this changes (documents filed under it stay "
                                                    "filed); omit for a new line or one of the same name")
    name: str = Field(min_length=1, max_length=100)
    required: bool = True
    note: str = Field(default="", max_length=200)


class ItemIn(Body):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=100)
    department_id: Id
    level: Literal["district", "town"]
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=2000)
    initials: str = Field(default="", max_length=40)
    active: bool = True
    produces: list[Annotated[str, Field(max_length=50)]] = Field(
        default_factory=list, max_length=10, description="the certificates / results the item issues (营业执照 …)")


class BundleIn(Body):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    item_ids: list[Id] = Field(max_length=10, description="the items in the order a case is served (at least two)")
    active: bool = True


class QuestionIn(Body):
    id: Id | None = Field(default=None, description="an existing question's id (situations name it); omit for a new one")
    text: str = Field(min_length=1, max_length=200)
    options: list[str] = Field(min_length=2, max_length=8)


class QuestionsIn(Body):
    questions: list[QuestionIn] = Field(max_length=6)


Answers = Annotated[
    dict[Annotated[str, Field(max_length=10)], Annotated[str, Field(max_length=100)]], Field(max_length=6)
]


class SituationIn(Body):
    name: str = Field(min_length=1, max_length=100)
    conditions: Answers = Field(default_factory=dict, description="question id → option this situation is for")
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    time_limit_days: int | None = Field(default=None, ge=0, le=365, description="承诺时限（工作日）；0 为即办")
    fee: str = Field(default="", max_length=200)
    pickup: str = Field(default="", max_length=200)
    active: bool = True


class SituationChoice(Body):
    situation_id: Id | None = Field(description="the item's situation; null for none (the general checklist)")


class ResolveIn(Body):
    answers: Answers = Field(description="question id → the option chosen")


class WindowIn(Body):
    name: str = Field(min_length=1, max_length=100)
    centre_id: Id
    department_ids: list[Id] = Field(min_length=1)
    active: bool = True


RoleName = Literal["worker", "clerk", "expert", "supervisor", "admin", "auditor"]


class UserIn(Body):
    username: str = Field(min_length=2, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: RoleName
    display_name: str = Field(default="", max_length=50)
    extension_point_id: Id | None = None
    window_ids: list[Id] | None = None
    department_ids: list[Id] | None = None
    centre_ids: list[Id] | None = Field(default=None, description="部门负责人所辖中心（含下级中心）")
    specialties: list[str] | None = None


class UserPatch(Body):
    display_name: str | None = Field(default=None, max_length=50)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    active: bool | None = None
    role: RoleName | None = Field(default=None, description="改变角色会使该账号全部令牌失效，并清空原有绑定")
    extension_point_id: Id | None = None
    window_ids: list[Id] | None = None
    department_ids: list[Id] | None = None
    centre_ids: list[Id] | None = None
    specialties: list[str] | None = None
    mobile: str | None = Field(default=None, max_length=11, description="工作人员手机（接收预警短信、浙政钉@提醒）；空串清除")


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=8, max_length=200)


class BeginUpload(Body):
    material: str = Field(min_length=1, max_length=20, description="清单项 id 或 other")
    size: int = Field(json_schema_extra={"exclusiveMinimum": 0})  # 0 or less: the domain's empty_file
    filename: str = Field(default="", max_length=200)
    source: Literal["upload", "capture"] = "upload"


class Review(Body):
    decision: Literal["accepted", "rejected"]
    reason: str = Field(default="", max_length=500)


class Invite(Body):
    # The least and the longest are the domain's rules, refused with their own codes (no_experts,
    # note_too_long); the schema only tells clients of them.
    expert_ids: list[Id] = Field(max_length=8, description="专家的用户 id", json_schema_extra={"minItems": 1})
    note: str = Field(default="", description="给专家的简短说明", json_schema_extra={"maxLength": MAX_NOTE})


class Decline(Body):
    reason: str = Field(default="", max_length=500)


class Stage(Body):
    expert_ids: list[Id] | None = Field(default=None, description="省略时为本件全部已接受邀请的专家")


class Opinion(Body):
    # Refused by the domain with its own codes (empty_opinion, opinion_too_long).
    text: str = Field(json_schema_extra={"minLength": 1, "maxLength": MAX_OPINION})


class ExpertProfile(Body):
    available: bool | None = None
    parallel_consultations: bool | None = None


# --- query strings -------------------------------------------------------------------------


class TicketQuery(Query):
    status: TicketStatus | None = None
    department_id: Id | None = None
    limit: int | None = Field(default=None, ge=1, le=500, description="最多返回条数（默认 200）")


class UserQuery(Query):
    role: RoleName | None = None
    extension_point_id: Id | None = Field(default=None, description="只列绑定该延伸点的账号")


class NetworkQuery(Query):
    centre_id: Id | None = Field(default=None, description="只看该中心（及其下级）")
    silent_days: int = Field(default=7, ge=1, le=365, description="多少天未连接算“长期未连接”（默认 7）")


class PointIn(Body):
    name: str = Field(min_length=1, max_length=100, description="延伸点名称（同一镇街内不重复）")
    centre_id: Id = Field(description="所属镇（街道）便民服务中心")
    address: str = Field(default="", max_length=200)
    contact_phone: str = Field(default="", max_length=30, description="办公电话，如 0574-87654321")


class PointPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100, description="改名")
    centre_id: Id | None = Field(default=None, description="迁移到另一个镇（街道）便民服务中心")
    address: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=30)
    active: bool | None = Field(default=None, description="停用（其工作人员不能取号）或启用")


class ClerkQuery(Query):
    department_id: Id | None = None


class ItemQuery(Query):
    q: str | None = Field(default=None, max_length=100, description="名称或拼音首字母")
    department_id: Id | None = None
    level: CentreLevel | None = None
    include_inactive: bool = Field(default=False, description="管理员：含已停用的事项和情形（其他角色忽略）")


class BundleQuery(Query):
    include_inactive: bool = Field(default=False, description="管理员：含已停办的联办事项（其他角色忽略）")


class ExpertQuery(Query):
    specialty: str | None = Field(default=None, max_length=100)
    department: Id | None = None
    online: bool | None = None


class InvitationQuery(Query):
    status: InvitationStatus | None = None


class QueueQuery(Query):
    centre_id: Id | None = None
    department_id: Id | None = None


class ReportQuery(Query):
    dimension: Literal["centre", "town", "extension_point", "department", "clerk", "item"] = Field(
        default="department", description="统计维度：受理中心、镇街、延伸点、部门、云窗口人员、事项")
    period: Literal["day", "week", "month", "year"] = Field(default="month", description="统计周期：日、周、月、年")
    day: date | None = Field(default=None, description="周期所含的某一天（默认今天）")


class ReportExportQuery(ReportQuery):
    format: Literal["csv", "xlsx"] = Field(default="csv", description="导出格式")


class CentreQuery(Query):
    centre_id: Id | None = None


class AlertQuery(Query):
    unacknowledged: bool = False
    limit: int | None = Field(default=None, ge=1, le=500, description="最多返回条数（默认 100）")


class AuditVerifyQuery(Query):
    anchor: str | None = Field(default=None, max_length=100,
                               description="序号:哈希（yunbang audit head 的输出）；可重复给出多个")


class AuditQuery(Query):
    action: str | None = Field(default=None, max_length=100)
    actor_id: Id | None = None
    actor: str | None = Field(default=None, max_length=50, description="账号（用户名）")
    before_id: Id | None = Field(default=None, description="只看 id 小于此值的（向前翻页）")
    target_type: str | None = Field(default=None, max_length=100)
    target_id: str | None = Field(default=None, max_length=100)
    since: Instant | None = Field(default=None, description="ISO 8601，须带时区")
    until: Instant | None = Field(default=None, description="ISO 8601，须带时区")
    limit: int | None = Field(default=None, ge=1, le=1000, description="最多返回条数（默认 100）")


class NotificationQuery(Query):
    state: Literal["held", "pending", "sent", "failed"] | None = Field(default=None, description="只看此状态的消息")
    before_id: Id | None = Field(default=None, description="只看 id 小于此值的（向前翻页）")
    limit: int | None = Field(default=None, ge=1, le=500, description="最多返回条数（默认 100）")


class NotificationTest(Body):
    channel: Literal["sms", "staff"]
    to: str = Field(default="", max_length=20, description="手机号；staff 渠道可留空（发到群）")


class ChecklistLinkIn(Body):
    phone: str | None = Field(default=None, max_length=20,
                              description="群众的 11 位手机号；从办件发送时可省略，发到群众登记的手机号")
    ticket_id: Id | None = Field(default=None, description="从办件发送时：记入该办件（事项和情形以办件为准）")
    situation_id: Id | None = Field(default=None, description="只发该办理情形的材料、时限、收费和取件地点")


# --- 督办 ledger (server/domain/ledger.py) ---------------------------------------------------------

LedgerSource = Literal["case", "point", "supervisor"]
LedgerCategory = Literal["materials_incomplete", "not_eligible", "cannot_handle", "complaint", "no_permission",
                         "dont_know", "cant_answer", "other"]
LedgerState = Literal["open", "claimed", "answered", "visited", "closed"]


class LedgerIn(Body):
    source: LedgerSource = Field(description="case: from a case (ticket_id); point: from the worker's extension point "
                                             "(item_id or department_id); supervisor: 交办 to a queue they oversee")
    category: LedgerCategory
    title: str = Field(min_length=1, max_length=100)
    detail: str = Field(default="", max_length=2000)
    ticket_id: Id | None = None
    item_id: Id | None = None
    centre_id: Id | None = None
    department_id: Id | None = None


class LedgerAnswerIn(Body):
    answer: str = Field(min_length=1, max_length=2000, description="the answer given to the resident")
    action_taken: str = Field(default="", max_length=2000, description="what was done about it")


class LedgerVisitIn(Body):
    verdict: Literal["satisfied", "unsatisfied"] = Field(description="the resident's verdict, asked by phone")
    note: str = Field(default="", max_length=2000)


class LedgerCloseIn(Body):
    note: str = Field(default="", max_length=2000)


class LedgerQuery(Query):
    state: LedgerState | None = None
    department_id: Id | None = None
    source: Literal["case", "point", "supervisor", "rating"] | None = None
    overdue: bool | None = Field(default=None, description="true: past the deadline and not answered yet")


class CertificateTypeIn(Body):
    name: str = Field(min_length=1, max_length=50, description="证照类型名称，如 食品经营许可证")
    item_id: Id = Field(description="续办该证照的事项")
    reminder_days: list[Annotated[int, Field(ge=0, le=366)]] = Field(
        min_length=1, max_length=6, description="到期前多少天提醒，如 [90, 30, 7]")
    active: bool = True


class CertificateQuery(Query):
    type_id: Id | None = None
    q: str | None = Field(default=None, max_length=64, description="11 位手机号（精确），或证照编号、持证人的一部分")
    state: Literal["current", "opted_out", "renewed", "expired"] | None = None
    before_id: Id | None = Field(default=None, description="只看 id 小于此值的（向前翻页）")
    limit: int | None = Field(default=None, ge=1, le=500)


class CertificateOptOut(Body):
    opted_out: bool = Field(description="true 不再提醒；false 恢复提醒")


class ReminderReportQuery(Query):
    start: date | None = Field(default=None, description="起始日（含），默认结束日前 89 天")
    end: date | None = Field(default=None, description="结束日（含），默认今天")
    within_days: int | None = Field(default=None, ge=1, le=365, description="提醒后多少天内续办计为“提醒后续办”（默认 30）")
