"""The authorization matrix: every HTTP route and every socket event × every role × one's own case,
another extension point's, another window's and another centre's case.

The table below is the expected outcome, cell by cell. A role in a row is either refused by the
route's role gate (``DENY``: 403 ``role_forbidden``) or admitted for the cases named by letters;
for the other cases it gets the row's refusal (as a stranger, the same answer as an unknown id).
An admitted call is *authorized*: it succeeds, or fails on a rule of the case (409 material
missing, 422 transfer to the same queue …) — never with one of the refusal codes. A route or an
event that has no row here makes ``test_every_route_and_event_has_a_row`` fail.

The world, seen from each role's one person (worker1, clerk4, expert1, supervisor2, admin, auditor1,
and a resident signed in on their own phone, whose own tickets none of these cases is: every case
route refuses them as a stranger):

- **A** own case: worker1's resident at 高桥镇 (town 民政 queue), called to clerk4's window and in
  service, expert1 invited and accepted, a document, an alert of 高桥镇's 社保 queue, a tidal
  window at 高桥镇;
- **P** another extension point's: worker2's resident, waiting at another town's centre;
- **W** another window's: worker1's resident at 高桥镇 民政 called to clerk5's new window at 高桥镇;
- **C** another centre's: worker3's resident in the district's 民政 queue, called to clerk1's
  window, with its own document, upload, invitation (to expert2), alert and tidal window.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiortc import RTCPeerConnection

from server.api.base import ROUTES
from server.app import create_app
from server.config import Settings
from server.keys import MONITOR, STORE
from signaling.namespace import LiveNamespace
from tests.conftest import Api, Platform, Reply
from tests.helpers import district_item, resident_sign_in, take
from tests.media import phone_photo

DENY = "deny"
ALL = "APWC"
ROLES = ("worker", "clerk", "expert", "supervisor", "admin", "auditor", "resident")
PERSONA = {"worker": "worker1", "clerk": "clerk4", "expert": "expert1", "supervisor": "supervisor2",
           "admin": "admin", "auditor": "auditor1", "resident": "resident"}
RESIDENT_PHONE = "13700137999"
NONE = ""  # admitted by the route's role gate, for none of the cases (a resident: not theirs)
REFUSALS = {"auth_required", "role_forbidden", "ticket_not_found", "document_not_found", "upload_not_found",
            "invitation_not_found", "alert_not_found", "window_not_found", "not_your_window", "not_your_ticket",
            "not_in_call", "not_serving_case", "centre_not_found", "department_not_found", "user_not_found"}
NOT_FOUND = (404, "ticket_not_found")


@dataclass(frozen=True)
class Row:
    """One route: who is admitted for which cases (letters), and what everyone else gets."""

    worker: str = DENY
    clerk: str = DENY
    expert: str = DENY
    supervisor: str = DENY
    admin: str = DENY
    auditor: str = DENY
    resident: str = DENY
    anonymous: bool = False  # admitted without a token
    refusal: tuple[int, str] = NOT_FOUND
    case: str = ""  # which path parameter names a case: ticket, document, upload, invitation, window, alert, tidal
    body: Any = None
    last: bool = False  # changes the case for good: run after every other row

    def admits(self, role: str) -> str:
        return getattr(self, role)


ANY = "-"  # a route about no case: admitted or denied as a whole
STAFF = dict(worker=ANY, clerk=ANY, expert=ANY, supervisor=ANY, admin=ANY)
EVERYONE = dict(STAFF, auditor=ANY, resident=ANY)
READERS = dict(STAFF, resident=ANY)

MATRIX: dict[str, Row] = {
    # --- accounts and sessions
    "POST /api/auth/login": Row(**EVERYONE, anonymous=True, body={"username": "expert3", "password": "demo12345"}),
    "POST /api/auth/logout": Row(**EVERYONE, last=True),
    "POST /api/auth/password": Row(**EVERYONE, body={"current_password": "not-mine", "new_password": "whatever-123"}),
    "GET /api/me": Row(**EVERYONE),
    "POST /api/auth/2fa/enrol": Row(clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY, body={}),
    "POST /api/auth/2fa/confirm": Row(clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY, body={"otp": "000000"}),
    "POST /api/auth/2fa/recovery-codes": Row(clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY, body={"otp": "000000"}),
    "DELETE /api/auth/2fa": Row(clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY, body={"otp": "000000"}),
    "POST /api/users/{user_id}/2fa/reset": Row(admin=ANY, body={}),
    "GET /api/users": Row(admin=ANY),
    "POST /api/users": Row(admin=ANY, body={}),
    "PATCH /api/users/{user_id}": Row(admin=ANY, body={"display_name": "专家 郑伟"}),
    "GET /api/clerks": Row(supervisor=ANY, admin=ANY),
    # --- public
    "GET /api/health": Row(**EVERYONE, anonymous=True),
    "GET /api/openapi.json": Row(**EVERYONE, anonymous=True),
    # --- organisation and catalogue
    "GET /api/org": Row(**READERS),
    "GET /api/items": Row(**READERS),
    "GET /api/items/{item_id}": Row(**READERS),
    "POST /api/items": Row(admin=ANY, body={}),
    "PUT /api/items/{item_id}": Row(admin=ANY, body={}),
    # --- 办理情形 (tests/test_situations.py)
    "POST /api/items/{item_id}/resolve": Row(**READERS, body={"answers": {}}),
    "PUT /api/items/{item_id}/questions": Row(admin=ANY, body={}),
    "POST /api/items/{item_id}/situations": Row(admin=ANY, body={}),
    "PUT /api/situations/{situation_id}": Row(admin=ANY, body={}),
    # --- 一事联办 (tests/test_bundles.py)
    "GET /api/bundles": Row(**READERS),
    "GET /api/bundles/{bundle_id}": Row(**READERS),
    "POST /api/bundles": Row(admin=ANY, body={}),
    "PUT /api/bundles/{bundle_id}": Row(admin=ANY, body={}),
    "GET /api/bundles/report": Row(supervisor=ANY, admin=ANY),
    # --- 统计报表 (tests/test_reports.py)
    "GET /api/reports": Row(supervisor=ANY, admin=ANY),
    "GET /api/reports/export": Row(supervisor=ANY, admin=ANY),
    "POST /api/windows": Row(admin=ANY, body={}),
    "PUT /api/windows/{window_id}": Row(admin=ANY, body={}),
    # --- queue and tickets
    "GET /api/queues": Row(**STAFF),
    "POST /api/tickets": Row(worker=ANY, resident=ANY, body={}),
    "GET /api/tickets": Row(worker=ANY, clerk=ANY, supervisor=ANY, admin=ANY, resident=ANY),
    "GET /api/tickets/{ticket_id}": Row(worker="AW", clerk="A", supervisor="AW", admin=ALL, resident=NONE,
                                        case="ticket"),
    "GET /api/tickets/{ticket_id}/resident": Row(worker="AW", clerk="A", case="ticket"),
    "POST /api/windows/{window_id}/call-next": Row(clerk="A", refusal=(403, "not_your_window"), case="window"),
    "POST /api/tickets/{ticket_id}/start": Row(clerk="A", case="ticket", body={}),
    "POST /api/tickets/{ticket_id}/recall": Row(clerk="A", case="ticket", body={}),
    "POST /api/tickets/{ticket_id}/no-show": Row(clerk="A", case="ticket", body={}),
    "POST /api/tickets/{ticket_id}/transfer": Row(clerk="A", case="ticket", body="same-queue"),
    "POST /api/tickets/{ticket_id}/complete": Row(clerk="A", case="ticket", body={"result": "done"}),
    "POST /api/tickets/{ticket_id}/cancel": Row(resident=NONE, worker="AW", clerk="A", case="ticket", body={}, last=True),
    "PUT /api/tickets/{ticket_id}/situation": Row(worker="AW", clerk="A", case="ticket", body={"situation_id": None}),
    "POST /api/tickets/{ticket_id}/rating": Row(resident=NONE, worker="AW", case="ticket", body={"score": 5}),
    "GET /api/tickets/{ticket_id}/items": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket"),
    "POST /api/tickets/{ticket_id}/items/complete": Row(clerk="A", case="ticket", body={"items": [{"item_id": 1}]}),
    "GET /api/tickets/{ticket_id}/messages": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket"),
    # --- documents
    "POST /api/tickets/{ticket_id}/uploads": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket",
                                                 body={"material": "other", "size": 100}),
    "GET /api/uploads/{upload_id}": Row(resident=NONE, worker="A", clerk="A", expert="A", refusal=(404, "upload_not_found"),
                                        case="upload"),
    "PUT /api/uploads/{upload_id}": Row(resident=NONE, worker="A", clerk="A", expert="A", refusal=(404, "upload_not_found"),
                                        case="upload", body="bytes"),
    "POST /api/uploads/{upload_id}/complete": Row(resident=NONE, worker="A", clerk="A", expert="A", refusal=(404, "upload_not_found"),
                                                  case="upload", body={}),
    "POST /api/tickets/{ticket_id}/documents": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket", body="multipart"),
    "GET /api/tickets/{ticket_id}/documents": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket"),
    "GET /api/documents/{document_id}": Row(resident=NONE, worker="AW", clerk="A", expert="A", refusal=(404, "document_not_found"),
                                            case="document"),
    "POST /api/documents/{document_id}/review": Row(clerk="A", refusal=(404, "document_not_found"), case="document",
                                                    body={"decision": "accepted"}),
    "GET /api/tickets/{ticket_id}/checklist": Row(resident=NONE, worker="AW", clerk="A", expert="A", case="ticket"),
    # --- experts
    "GET /api/experts": Row(clerk=ANY, expert=ANY, supervisor=ANY, admin=ANY),
    "PATCH /api/experts/me": Row(expert=ANY, body={}),
    "POST /api/tickets/{ticket_id}/consultations": Row(clerk="A", supervisor="AW", case="ticket", body="invite"),
    "GET /api/tickets/{ticket_id}/consultations": Row(clerk="A", expert="A", supervisor="AW", admin=ALL, case="ticket"),
    "POST /api/tickets/{ticket_id}/consultations/bring-in": Row(clerk="A", supervisor="AW", case="ticket", body={}),
    "POST /api/tickets/{ticket_id}/consultations/send-back": Row(clerk="A", supervisor="AW", case="ticket", body={}),
    "GET /api/invitations": Row(expert=ANY),
    "POST /api/invitations/{invitation_id}/accept": Row(expert="A", refusal=(404, "invitation_not_found"),
                                                        case="invitation", body={}),
    "POST /api/invitations/{invitation_id}/decline": Row(expert="A", refusal=(404, "invitation_not_found"),
                                                         case="invitation", body={}),
    "POST /api/tickets/{ticket_id}/opinions": Row(expert="A", case="ticket", body={"text": "建议补充户口簿"}),
    # --- supervision and audit
    "GET /api/dashboard": Row(supervisor=ANY, admin=ANY),
    "GET /api/dashboard/links": Row(supervisor=ANY, admin=ANY),
    # --- 网点一览 and 延伸点管理 (tests/test_network.py)
    "GET /api/network": Row(supervisor=ANY, admin=ANY),
    "POST /api/extension-points": Row(admin=ANY, body={}),
    "PATCH /api/extension-points/{point_id}": Row(admin=ANY, body={}),
    "POST /api/extension-points/import": Row(admin=ANY, body={}),
    "GET /api/alerts": Row(supervisor=ANY, admin=ANY),
    "POST /api/alerts/{alert_id}/acknowledge": Row(supervisor="A", admin=ALL, refusal=(404, "alert_not_found"),
                                                   case="alert", body={}),
    "POST /api/tidal-windows": Row(supervisor=ANY, admin=ANY, body={}),
    "POST /api/tidal-windows/{window_id}/close": Row(supervisor="A", admin=ALL, refusal=(404, "window_not_found"),
                                                     case="tidal", body={}),
    "GET /api/audit": Row(auditor=ANY),
    "GET /api/audit/verify": Row(auditor=ANY),
    "GET /api/ice-servers": Row(worker=ANY, clerk=ANY, expert=ANY, resident=ANY),
    # --- 一次性告知 (a case's when sent from one: tests/test_checklists.py)
    "POST /api/items/{item_id}/checklist-links": Row(worker=ANY, clerk=ANY, body={"phone": "13800138000"}),
    "GET /api/checklist-links/{token}": Row(**EVERYONE, anonymous=True),
    "POST /api/checklist-links/{token}/resolve": Row(**EVERYONE, anonymous=True, body={"answers": {}}),
    # --- 屏对屏: residents' sign-in (tests/test_residents.py)
    "GET /api/resident/privacy": Row(**EVERYONE, anonymous=True),
    "POST /api/resident/code": Row(**EVERYONE, anonymous=True, body={"phone": "13600136001"}),
    "POST /api/resident/sign-in": Row(**EVERYONE, anonymous=True, body={"phone": "13600136001", "code": "12"}),
    # --- 预约 (tests/test_appointments.py): a resident's own bookings only
    "GET /api/appointments/slots": Row(resident=ANY),
    "POST /api/appointments": Row(resident=ANY, body={}),
    "GET /api/appointments": Row(resident=ANY),
    "POST /api/appointments/{appointment_id}/cancel": Row(resident=ANY, body={}),
    # --- 证照到期提醒 (tests/test_certificates.py): the registry is the administrators'; the link anyone's
    "GET /api/certificate-types": Row(admin=ANY),
    "POST /api/certificate-types": Row(admin=ANY, body={}),
    "PUT /api/certificate-types/{type_id}": Row(admin=ANY, body={}),
    "POST /api/certificates/import": Row(admin=ANY, body={}),
    "GET /api/certificates": Row(admin=ANY),
    "POST /api/certificates/{certificate_id}/opt-out": Row(admin=ANY, body={"opted_out": True}),
    "POST /api/certificates/{certificate_id}/renewed": Row(admin=ANY, body={}),
    "GET /api/certificates/report": Row(supervisor=ANY, admin=ANY),
    "GET /api/certificate-links/{token}": Row(**EVERYONE, anonymous=True),
    "POST /api/certificate-links/{token}/opt-out": Row(**EVERYONE, anonymous=True, body={}),
    # --- the outbox
    # --- 督办 ledger (tests/test_ledger.py): the domain scopes items to queues and points
    "GET /api/ledger": Row(worker=ANY, clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY),
    "GET /api/ledger/summary": Row(supervisor=ANY, admin=ANY, auditor=ANY),
    "POST /api/ledger": Row(worker=ANY, clerk=ANY, supervisor=ANY, body={}),
    "GET /api/ledger/{ledger_id}": Row(worker=ANY, clerk=ANY, supervisor=ANY, admin=ANY, auditor=ANY),
    "POST /api/ledger/{ledger_id}/claim": Row(clerk=ANY, supervisor=ANY, body={}),
    "POST /api/ledger/{ledger_id}/answer": Row(clerk=ANY, supervisor=ANY, body={}),
    "POST /api/ledger/{ledger_id}/visit": Row(supervisor=ANY, body={}),
    "POST /api/ledger/{ledger_id}/close": Row(supervisor=ANY, body={}),
    # --- alerts pushed to supervisors (tests/test_alert_push.py): the link is the key
    "GET /api/alert-links/{token}": Row(**EVERYONE, anonymous=True),
    "POST /api/alert-links/{token}/acknowledge": Row(**EVERYONE, anonymous=True, body={}),
    "GET /api/notifications": Row(admin=ANY),
    "POST /api/notifications/test": Row(admin=ANY, body={"channel": "staff"}),
    "POST /api/notifications/{notification_id}/resend": Row(admin=ANY, body={}),
}

# What the app serves outside the API's route table (no roles: none of them takes a person's
# token), and what guards each instead.
OUTSIDE_API: dict[str, str] = {
    "GET /api/objects/{key}": "a signed link (check_signed_links below)",
    "GET /metrics": "the operators' token, never a person's: served only when YUNBANG_METRICS_TOKEN is set "
                    "(check_metrics_closed below, tests/test_metrics.py)",
    "GET /": "public: the landing page",
    "GET /app": "public: to the browser client",
    "GET /app/{path}": "public: the browser client's files",
    "GET /socket.io/": "socket.io: its token at connect, then every event (SOCKET below)",
    "POST /socket.io/": "socket.io",
    "OPTIONS /socket.io/": "socket.io",
}

# Socket events (socket.io, default namespace), for the five roles that can connect plus the auditor.
# Letters: the cases whose call the person may act in; the refusal code for the others.
SOCKET: dict[str, tuple[dict[str, str], str]] = {
    "refresh": ({r: ANY for r in ROLES}, ""),
    "ping_app": ({r: ANY for r in ROLES}, ""),
    "join": ({"worker": "AW", "clerk": "A", "expert": "A", "resident": NONE}, "ticket_not_found"),
    "publish": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "subscribe_answer": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "resubscribe": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "ice_candidate": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "mute": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "chat": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "capture_request": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    "leave": ({"worker": "AW", "clerk": "A", "expert": "A"}, "not_in_call"),
    # the device check's probe: about no case, for those who take calls (its offer: probe_offer())
    "net_check": ({"worker": ANY, "clerk": ANY, "expert": ANY, "resident": ANY}, "role_forbidden"),
    "net_check_end": ({r: ANY for r in ROLES}, ""),
}
SOCKET_BODIES: dict[str, dict[str, Any]] = {
    "publish": {"type": "offer", "sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n", "sources": {"0": "camera"}},
    "subscribe_answer": {"type": "answer", "sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n"},
    "ice_candidate": {"pc": "publish", "candidate": None},
    "mute": {"source": "camera", "muted": True},
    "chat": {"text": "您好"},
    "capture_request": {"material": "other"},
}
# A worker or expert in the call is refused remote capture by the rule of the case (clerks only).
SOCKET_RULE_REFUSALS = {("capture_request", "worker"): "role_forbidden", ("capture_request", "expert"): "role_forbidden"}


@dataclass
class World:
    platform: Platform
    people: dict[str, Api]
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind → case letter → id (or persona-keyed)
    department: int = 0

    def param(self, kind: str, case: str, role: str) -> Any:
        value = self.cases[kind].get(case)
        return value.get(role, value.get("*")) if isinstance(value, dict) else value


async def ok(reply: Reply, what: str) -> Reply:
    assert reply.status < 400, (what, reply)
    return reply


async def build_world(platform: Platform) -> World:
    login = platform.login
    admin = await login("admin")
    org = (await admin.get("/api/org")).body
    mz = next(d["id"] for d in org["departments"] if d["code"] == "MZ")
    gaoqiao = next(c for c in org["centres"] if c["name"].startswith("高桥镇"))
    window = (await ok(await admin.post("/api/windows", {"name": "高桥镇民政云窗口二", "centre_id": gaoqiao["id"],
                                                          "department_ids": [mz]}), "window")).body
    await ok(await admin.post("/api/users", {"username": "clerk5", "password": "demo12345", "role": "clerk",
                                             "display_name": "高桥镇云窗口 二号", "window_ids": [window["id"]]}), "clerk5")
    people = {name: await login(name) for name in ("worker1", "worker2", "worker3", "clerk1", "clerk4", "clerk5",
                                                    "expert1", "expert2", "supervisor1", "supervisor2", "auditor1")}
    people["admin"] = admin
    people["resident"] = await resident_sign_in(platform, RESIDENT_PHONE)
    w1, w2, w3 = people["worker1"], people["worker2"], people["worker3"]
    clerk1, clerk4, clerk5 = people["clerk1"], people["clerk4"], people["clerk5"]

    async def town_item(api: Api, code: str) -> dict[str, Any]:
        dept = next(d["id"] for d in org["departments"] if d["code"] == code)
        return (await api.get("/api/items", department_id=dept, level="town")).body[0]

    def clerk_window(api: Api, code: str, centre: int | None = None) -> int:
        return next(w["id"] for w in api.user["windows"] if any(d["code"] == code for d in w["departments"])
                    and (centre is None or w["centre_id"] == centre))

    async def called(api: Api, window_id: int, expect: int) -> None:
        reply = await ok(await api.post(f"/api/windows/{window_id}/call-next"), "call-next")
        assert reply.body["id"] == expect
        await ok(await api.post(f"/api/tickets/{expect}/start"), "start")

    a = await take(w1, (await town_item(w1, "MZ"))["id"], "甲大爷", resident_extra={"id_number": "330203195001011234"})
    await called(clerk4, clerk_window(clerk4, "MZ"), a["id"])
    wt = await take(w1, (await town_item(w1, "MZ"))["id"], "丁大妈")
    await called(clerk5, window["id"], wt["id"])
    p = await take(w2, (await town_item(w2, "MZ"))["id"], "外镇群众")
    c = await take(w3, (await district_item(w3, "MZ"))["id"], "区级群众")
    await called(clerk1, clerk_window(clerk1, "MZ"), c["id"])
    tickets = {"A": a["id"], "P": p["id"], "W": wt["id"], "C": c["id"]}

    async def document(api: Api, ticket_id: int) -> int:
        form = aiohttp.FormData()
        form.add_field("material", "other")
        form.add_field("file", phone_photo(), filename="photo.jpg", content_type="image/jpeg")
        return int((await ok(await api.call("POST", f"/api/tickets/{ticket_id}/documents", data=form), "doc")).body["id"])

    documents = {"A": await document(w1, a["id"]), "W": await document(clerk5, wt["id"]),
                 "C": await document(clerk1, c["id"])}

    async def invite(api: Api, ticket_id: int, expert: str) -> int:
        body = {"expert_ids": [people[expert].user["id"]]}
        reply = await ok(await api.post(f"/api/tickets/{ticket_id}/consultations", body), "invite")
        return int(reply.body["invitations"][0]["id"])

    await ok(await people["expert1"].post(f"/api/invitations/{await invite(clerk4, a['id'], 'expert1')}/accept"), "accept")
    invitations = {"A": await invite(clerk5, wt["id"], "expert1"), "C": await invite(clerk1, c["id"], "expert2")}

    async def begin(api: Api, ticket_id: int) -> str:
        reply = await ok(await api.post(f"/api/tickets/{ticket_id}/uploads", {"material": "other", "size": 100}), "up")
        return str(reply.body["upload_id"])

    uploads = {"A": {"worker": await begin(w1, a["id"]), "clerk": await begin(clerk4, a["id"]),
                     "expert": await begin(people["expert1"], a["id"]), "*": await begin(w1, a["id"])},
               "W": await begin(clerk5, wt["id"]), "C": await begin(clerk1, c["id"])}

    # Waiting long enough for alerts: 高桥镇 社保 (supervisor2's), worker2's town, the district's 社保.
    await take(w1, (await town_item(w1, "SB"))["id"], "等候乙")
    await take(w3, (await district_item(w3, "SB"))["id"], "等候丙")
    platform.clock.advance(minutes=16)
    await platform.app[MONITOR].run_once()
    alerts = (await people["supervisor1"].get("/api/alerts")).body
    timeouts = [x for x in alerts if x["kind"] == "wait_timeout"]

    def alert_at(centre: int) -> int:
        return next(x["id"] for x in timeouts if x["centre_id"] == centre)

    district = next(ce["id"] for ce in org["centres"] if ce["parent_id"] is None)
    alert_ids = {"A": alert_at(gaoqiao["id"]), "P": alert_at(p["centre_id"]), "C": alert_at(district)}

    clerk2, clerk3 = await login("clerk2"), await login("clerk3")
    tidal_a = await ok(await people["supervisor2"].post("/api/tidal-windows", {"department_id": mz,
                                                                               "clerk_id": clerk2.user["id"]}), "tidal")
    tidal_c = await ok(await people["supervisor1"].post("/api/tidal-windows", {
        "department_id": mz, "clerk_id": clerk3.user["id"], "centre_id": district}), "tidal")
    world = World(platform, people, department=mz)
    world.cases = {
        "ticket": tickets, "document": documents, "invitation": invitations, "upload": uploads, "alert": alert_ids,
        "window": {"A": clerk_window(clerk4, "MZ"), "W": window["id"], "C": clerk_window(clerk1, "MZ")},
        "tidal": {"A": tidal_a.body["id"], "C": tidal_c.body["id"]},
    }
    return world


async def request(world: World, api: Api, method: str, template: str, row: Row, case: str | None,
                  role: str) -> Reply:
    params: dict[str, Any] = {"user_id": world.people["expert2"].user["id"], "item_id": 1,
                              "window_id": world.cases["window"]["A"], "notification_id": 1,
                              "situation_id": 1, "bundle_id": 1, "token": "no-such-link-token", "appointment_id": 1,
                              "ledger_id": 1, "type_id": 1, "certificate_id": 1, "point_id": 1}
    if row.case:
        value = world.param(row.case, case or "A", role)
        params.update({f"{row.case}_id": value, "ticket_id": value} if row.case == "ticket" else
                      {"document_id": value, "upload_id": value, "invitation_id": value, "alert_id": value,
                       "window_id": value})
    path = template.format(**params)
    if row.body == "multipart":
        form = aiohttp.FormData()
        form.add_field("material", "other")
        form.add_field("file", phone_photo(color="gray"), filename="p.jpg", content_type="image/jpeg")
        return await api.call(method, path, data=form)
    if row.body == "bytes":
        return await api.call(method, path, data=b"0123456789", headers_extra={"Upload-Offset": "0"})
    body = row.body
    if body == "same-queue":
        body = {"department_id": world.department}
    elif body == "invite":
        body = {"expert_ids": [(await world.platform.login("expert3")).user["id"]]}
    if method == "GET":
        return await api.get(path)
    return await api.call(method, path, json=body if body is not None else {})


def authorized(reply: Reply) -> bool:
    return reply.status < 400 or (reply.status not in (401,) and reply.code not in REFUSALS)


async def check_route(world: World, key: str, row: Row, fresh: Callable[[str], Awaitable[Api]]) -> int:
    method, template = key.split(" ", 1)
    checked = 0
    if not template.startswith("/api/auth/login"):
        anonymous = await request(world, world.platform.anonymous(), method, template, row, "A", "worker")
        if row.anonymous:
            assert authorized(anonymous), (key, "anonymous", anonymous)
        else:
            assert (anonymous.status, anonymous.code) == (401, "auth_required"), (key, "anonymous", anonymous)
        checked += 1
    for role in ROLES:
        admitted = row.admits(role)
        api = await fresh(role) if row.last or template == "/api/auth/logout" else world.people[PERSONA[role]]
        cases = [None] if not row.case else [c for c in "APWC" if world.param(row.case, c, role) is not None]
        for case in cases:
            reply = await request(world, api, method, template, row, case, role)
            where = (key, role, case, reply)
            if admitted == DENY:
                assert (reply.status, reply.code) == (403, "role_forbidden"), where
            elif case is None or case in admitted:
                assert authorized(reply), where
            else:
                assert (reply.status, reply.code) == row.refusal, where
            checked += 1
    return checked


def socket_events() -> set[str]:
    return {name[3:] for name in dir(LiveNamespace) if name.startswith("on_")} - {"connect", "disconnect"}


def app_routes(tmp_path: Path) -> list[web.AbstractRoute]:
    """Every route the app serves, with each optional one turned on (not the development pages)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'none.db'}",
                        secret_key="k" * 48, metrics_token="m" * 32)
    return list(create_app(settings, run_monitor=False).router.routes())


def test_every_route_and_event_has_a_row(tmp_path: Path) -> None:
    routes = {f"{r.method} {r.path}" for r in ROUTES}
    assert routes - set(MATRIX) == set(), "routes without a row in the matrix"
    served = {f"{r.method} {r.resource.canonical}" for r in app_routes(tmp_path) if r.method != "HEAD"}
    assert served - routes == set(OUTSIDE_API), "routes outside the API's table differ from OUTSIDE_API"
    assert set(MATRIX) - routes == set(), "rows for routes that no longer exist"
    assert socket_events() == set(SOCKET), "socket events and the matrix differ"
    for key, row in MATRIX.items():
        route = next(r for r in ROUTES if f"{r.method} {r.path}" == key)
        admitted = {role for role in ROLES if row.admits(role) != DENY}
        assert admitted == set(route.roles) or (not route.auth and row.anonymous), (key, admitted, route.roles)


async def test_the_matrix_holds_for_every_route_event_role_and_case(platform: Platform) -> None:
    """One world per database: socket events first (the calls must be open), signed links, then
    the routes (those that end a case or a session last)."""
    world = await build_world(platform)
    sockets = await check_socket_events(world)
    await check_signed_links(world)
    await check_metrics_closed(world)

    async def fresh(role: str) -> Api:
        if role == "resident":
            platform.clock.advance(seconds=61)  # a code a minute per number
            return await resident_sign_in(platform, RESIDENT_PHONE)
        return await platform.login(PERSONA[role])

    routes = 0
    for key, row in sorted(MATRIX.items(), key=lambda kv: kv[1].last):
        routes += await check_route(world, key, row, fresh)
    print(f"\nauthorization matrix: {len(MATRIX)} routes, {routes} route × role × case checks; "
          f"{len(SOCKET)} socket events, {sockets} event × role × case checks")
    assert routes > 500 and sockets > 200


async def probe_offer() -> dict[str, Any]:
    """A network check's offer (one sendrecv video m-line), as a browser's device check sends."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return {"type": "offer", "sdp": sdp}


async def check_socket_events(world: World) -> int:
    platform, tickets = world.platform, world.cases["ticket"]
    anonymous = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await anonymous.connect(platform.base, transports=["websocket"], wait_timeout=5)
    sockets: dict[str, socketio.AsyncClient] = {}
    checked = 0
    try:
        for role in ROLES:
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(platform.base, auth={"token": world.people[PERSONA[role]].token},
                                 transports=["websocket"], wait_timeout=5)
            sockets[role] = client
        first, final = ["refresh", "ping_app", "join"], ["leave"]
        caseless_bodies = {"net_check": await probe_offer()}
        for event in first + [e for e in SOCKET if e not in first + final] + final:
            admitted, refusal = SOCKET[event]
            for role in ROLES:
                for case in ([None] if set(admitted.values()) == {ANY} else list("APWC")):
                    payload = (caseless_bodies.get(event, {}) if case is None
                               else {"ticket_id": tickets[case], **SOCKET_BODIES.get(event, {})})
                    ack = await sockets[role].call(event, payload, timeout=15)
                    code = ack.get("error", {}).get("code") if isinstance(ack, dict) else None
                    where = (event, role, case, ack)
                    allowed = admitted.get(role, "")
                    if case is None:
                        assert code == (None if role in admitted else refusal), where
                    elif case in allowed:
                        rule = SOCKET_RULE_REFUSALS.get((event, role))
                        assert code == rule if rule else code not in REFUSALS, where
                    else:
                        assert code == refusal, where
                    checked += 1
    finally:
        for client in sockets.values():
            await client.disconnect()
    return checked


async def check_metrics_closed(world: World) -> None:
    """Without its own token set, /metrics is not there for anyone, whatever they bring."""
    for who in (world.platform.anonymous(), *world.people.values()):
        reply = await who.get("/metrics")
        assert reply.status == 404, (who.user and who.user["username"], reply)


async def check_signed_links(world: World) -> None:
    """Signed document links: the genuine one opens; expired, tampered, stretched or moved to
    another object, it is refused."""
    platform = world.platform
    document = (await world.people["worker1"].get(f"/api/documents/{world.cases['document']['A']}")).body
    link = document["urls"]["viewing"]
    async with platform.http.get(platform.base + link) as good:
        assert good.status == 200 and good.headers["Content-Type"] == "image/jpeg"
    path, _, query = link.partition("?")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    store = platform.app[STORE]
    key = path.removeprefix("/api/objects/")
    past = int(time.time()) - 10
    other = (await world.people["clerk1"].get(f"/api/documents/{world.cases['document']['C']}")).body["urls"]["viewing"]
    flipped = fields["sig"][:-1] + ("0" if fields["sig"][-1] != "0" else "1")
    forged = {
        "expired": f"{path}?expires={past}&sig={store._signature(key, past, None)}",
        "tampered": f"{path}?expires={fields['expires']}&sig={flipped}",
        "foreign": f"{other.partition('?')[0]}?expires={fields['expires']}&sig={fields['sig']}",
        "stretched": f"{path}?expires={int(fields['expires']) + 3600}&sig={fields['sig']}",
    }
    for name, url in forged.items():
        async with platform.http.get(platform.base + url) as refused:
            body = await refused.json()
            assert refused.status == 400 and body["error"]["code"] == "link_expired", (name, refused.status, body)
