"""证照到期提醒: an administrator keeps certificate types with their reminder rules and imports the
registry from CSV or XLSX (good rows in, bad rows reported by row number and reason); the monitor
texts each rule once per certificate (also when two passes run at once, and through a real SMS
gateway), never to a holder who opted out; the link opens without login; a case completed for
the renewing item renews the holder's certificate; the report's figures are the hand-counted ones."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl

from server.config import Settings
from server.domain.certificates import ID_CHECK, ID_WEIGHTS
from server.domain.clock import ManualClock
from server.keys import MONITOR, NOTIFY
from tests.conftest import Api, Platform
from tests.helpers import take
from tests.test_notify import Receiver, receiver, running, webhook  # noqa: F401  (the receiver fixture)

TZ = ZoneInfo("Asia/Shanghai")
HEADER = "持证人,手机号,身份证号,证照类型,证照编号,到期日期"  # the tests' clock: Monday 2026-11-23 10:00


def id_number(body: str) -> str:
    """A valid 居民身份证号码 from its first 17 digits."""
    return body + ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def csv_file(*lines: str) -> bytes:
    return "\n".join((HEADER, *lines)).encode()


async def upload(api: Api, data: bytes, content_type: str = "text/csv") -> Any:
    return await api.call("POST", "/api/certificates/import", data=data, headers_extra={"Content-Type": content_type})


async def registry(admin: Api, **query: Any) -> list[dict[str, Any]]:
    reply = await admin.get("/api/certificates", **query)
    assert reply.status == 200, reply
    return list(reply.body["certificates"])


async def reminders(platform: Platform) -> list[dict[str, Any]]:
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    return [m for m in messages if m["kind"] == "certificate_reminder"]


def token_of(message: dict[str, Any]) -> str:
    found = re.search(r"/app/r/([A-Za-z0-9_-]+)", message["text"])
    assert found, message["text"]
    return found.group(1)


async def test_each_type_has_its_item_and_rules_and_bad_rules_change_nothing(platform: Platform) -> None:
    admin = await platform.login("admin")
    kinds = (await admin.get("/api/certificate-types")).body
    food = next(k for k in kinds if k["name"] == "食品经营许可证")
    assert (food["item_code"], food["reminder_days"], food["certificates"]) == ("SC-004", [90, 30, 7], 0)
    item = (await admin.get("/api/items", q="营业执照遗失补领")).body[0]
    added = await admin.post("/api/certificate-types", {"name": "营业执照", "item_id": item["id"],
                                                        "reminder_days": [7, 30, 7]})
    assert added.status == 201 and added.body["reminder_days"] == [30, 7], "distinct, tightest last"
    refusals = [
        ({"reminder_days": []}, 422, "invalid_input"),
        ({"reminder_days": [400]}, 422, "invalid_input"),
        ({"reminder_days": [-1]}, 422, "invalid_input"),
        ({"name": "食品经营许可证"}, 409, "certificate_type_exists"),
        ({"item_id": 999999}, 404, "item_not_found"),
    ]
    for change, status, code in refusals:
        body = {"name": "营业执照", "item_id": item["id"], "reminder_days": [30], **change}
        reply = await admin.put(f"/api/certificate-types/{added.body['id']}", body)
        assert (reply.status, reply.code) == (status, code), (change, reply)
    assert (await admin.put("/api/certificate-types/999999", {"name": "某证", "item_id": item["id"],
                                                               "reminder_days": [7]})).code == "certificate_type_not_found"
    again = next(k for k in (await admin.get("/api/certificate-types")).body if k["id"] == added.body["id"])
    assert again["reminder_days"] == [30, 7] and again["name"] == "营业执照", "refusals changed nothing"
    stopped = await admin.put(f"/api/certificate-types/{added.body['id']}", {
        "name": "营业执照", "item_id": item["id"], "reminder_days": [60, 15], "active": False})
    assert stopped.status == 200 and stopped.body["reminder_days"] == [60, 15] and not stopped.body["active"]


async def test_a_csv_import_takes_the_good_rows_and_reports_each_bad_one_by_row_and_reason(platform: Platform) -> None:
    admin = await platform.login("admin")
    holder_id = id_number("33020319800101123")
    reply = await upload(admin, csv_file(
        "鼓楼小吃店,13800138001,,食品经营许可证,JY001,2027-02-10",  # row 2: good
        "张三,1380013,,居住证,JZ001,2026-12-20",  # row 3: phone
        "李四,13800138003,,驾驶证,JS001,2026-12-20",  # row 4: unknown type
        f"王五,138 0013 8004,{holder_id},居住证,JZ002,2026/12/30",  # row 5: good (spaces in the phone)
        ",,,,,",  # row 6: blank, left out
        "赵六,13800138006,,居住证,JZ003,明年",  # row 7: date
        ",13800138007,330203198001011230,居住证,,2026-12-01",  # row 8: holder, ID's check digit, number
        "鼓楼小吃店,13800138001,,食品经营许可证,JY001,2027-02-10",  # row 9: repeats row 2
    ))
    assert reply.status == 200, reply
    body = reply.body
    assert (body["rows"], body["imported"], body["created"], body["bad_rows"]) == (7, 2, 2, 5), body
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (3, "手机号"), (4, "证照类型"), (7, "到期日期"), (8, "持证人"), (8, "身份证号"), (8, "证照编号"), (9, "证照编号")]
    reasons = {(e["row"], e["column"]): e["reason"] for e in body["errors"]}
    assert "驾驶证" in reasons[(4, "证照类型")] and "第 2 行" in reasons[(9, "证照编号")]
    assert "13800138" not in str(body), "no phone number echoed"

    listed = await registry(admin)
    assert [c["number"] for c in listed] == ["JZ002", "JY001"]
    wang = listed[0]
    assert (wang["holder"], wang["phone"], wang["id_number"], wang["expires_on"], wang["type"]) == (
        "王*", "138****8004", holder_id[:6] + "********" + holder_id[-4:], "2026-12-30", "居住证")
    assert wang["days_left"] == 37 and wang["reminders"] == [] and wang["opted_out_at"] is None
    assert [c["number"] for c in await registry(admin, q="13800138001")] == ["JY001"], "found by the phone"

    # The corrected file, as Excel saves a CSV in China (GBK): upserted by type and number.
    fixed = csv_file("鼓楼小吃店,13800138001,,食品经营许可证,JY001,2027-02-10",
                     f"王五,13800138044,{holder_id},居住证,JZ002,2026-12-30",
                     "张三,13800138002,,居住证,JZ001,2026-12-20").decode().encode("gb18030")
    again = (await upload(admin, fixed)).body
    assert (again["created"], again["updated"], again["unchanged"], again["errors"]) == (1, 1, 1, []), again
    assert next(c for c in await registry(admin) if c["number"] == "JZ002")["phone"] == "138****8044"

    before = len(await registry(admin))
    missing = await upload(admin, "持证人,手机号,证照编号\n张三,13800138002,JZ009".encode())
    assert (missing.status, missing.code) == (422, "import_columns") and "证照类型" in missing.body["error"]["message"]
    for bad, code in ((b"", "import_empty"), (HEADER.encode(), "import_empty"), (b"\xff\xfe\x00\x01" * 10, "import_unreadable"),
                      (b"PK\x03\x04 not really a workbook", "import_unreadable")):
        reply = await upload(admin, bad)
        assert (reply.status, reply.code) == (422, code), (bad, reply)
    assert len(await registry(admin)) == before, "a refused file imports nothing"
    imports = (await (await platform.login("auditor1")).get("/api/audit", action="certificate.import")).body
    assert [(e["detail"]["created"], e["detail"]["bad_rows"]) for e in imports] == [(1, 0), (2, 5)]


async def test_an_xlsx_import_reads_excel_dates_and_numbers(platform: Platform) -> None:
    admin = await platform.login("admin")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["持证人", "手机号", "证照类型", "证照编号", "到期日期"])  # no ID column: it is optional
    sheet.append(["海曙区白云面馆", 13800138011, "食品经营许可证", "JY330203001", datetime(2027, 1, 5)])
    sheet.append(["月湖茶餐厅", "13800138012", "营业执照", "91330203", "2027-03-01"])
    sheet.append(["段塘烘焙坊", "13800138013", "食品经营许可证", "JY330203002", 20270401])
    out = io.BytesIO()
    book.save(out)
    reply = await upload(admin, out.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert reply.status == 200, reply
    assert (reply.body["created"], [(e["row"], e["column"]) for e in reply.body["errors"]]) == (2, [(3, "证照类型")])
    shown = {c["number"]: c for c in await registry(admin)}
    assert shown["JY330203001"]["expires_on"] == "2027-01-05" and shown["JY330203001"]["phone"] == "138****8011"
    assert shown["JY330203002"]["expires_on"] == "2027-04-01"


async def test_each_rule_texts_once_even_from_two_passes_and_an_opted_out_holder_no_more(platform: Platform) -> None:
    admin = await platform.login("admin")
    imported = await upload(admin, csv_file(
        "甲,13900139001,,居住证,A-20,2026-12-13",  # 20 days: the 30-day rule
        "乙,13900139002,,居住证,B-5,2026-11-28",  # 5 days: the 7-day rule (the 30-day one is never sent)
        "丙,13900139003,,居住证,C-60,2027-01-22",  # 60 days: none yet
        "丁,13900139004,,居住证,D-old,2026-11-20",  # expired: never
        "戊,13900139005,,居住证,E-17,2026-12-10",  # 17 days: the 30-day rule, then opts out
    ))
    assert imported.body["created"] == 5, imported
    monitor = platform.app[MONITOR]
    await monitor.run_once()
    await monitor.run_once()
    sent = await reminders(platform)
    assert sorted(m["to"] for m in sent) == ["139****9001", "139****9002", "139****9005"], sent
    first = next(m for m in sent if m["to"] == "139****9001")
    assert "居住证" in first["text"] and "2026年12月13日" in first["text"] and "居住证办理" in first["text"]
    assert "还有 20 天" in first["text"] and "/app/r/" in first["text"]
    shown = {c["number"]: c for c in await registry(admin)}
    assert [r["days_before"] for r in shown["A-20"]["reminders"]] == [30]
    assert [r["days_before"] for r in shown["B-5"]["reminders"]] == [7]

    anyone = platform.anonymous()
    token = token_of(next(m for m in sent if m["to"] == "139****9005"))
    page = await anyone.get(f"/api/certificate-links/{token}")
    assert page.status == 200, page
    assert page.body["certificate"]["holder"] == "戊*" and page.body["certificate"]["days_left"] == 17
    assert page.body["item"]["name"] == "居住证办理" and page.body["materials"], "what to bring to renew it"
    out = await anyone.post(f"/api/certificate-links/{token}/opt-out")
    assert out.status == 200 and out.body["certificate"]["opted_out"], out
    assert (await anyone.post(f"/api/certificate-links/{token}/opt-out")).status == 200, "twice is once"
    assert (await anyone.get("/api/certificate-links/no-such-token")).code == "certificate_link_not_found"

    # Twelve days on: 甲 (7 days left) is due its 7-day rule; 戊 (4 days left) opted out. Two
    # passes at once (two nodes) text it once.
    platform.clock.set(datetime(2026, 12, 6, 10, 0, tzinfo=TZ))
    await asyncio.gather(monitor.run_once(), monitor.run_once())
    await monitor.run_once()
    sent = await reminders(platform)
    assert len(sent) == 4 and sorted(m["to"] for m in sent).count("139****9001") == 2, sent
    admin = await platform.login("admin")  # the morning's session has run out
    opted = next(c for c in await registry(admin) if c["number"] == "E-17")
    assert opted["opted_out_by"] == "holder" and opted["reminders"] == [{"days_before": 30, "sent_at": opted["reminders"][0]["sent_at"]}]

    # An administrator resumes 戊's reminders (the holder asked by phone): the 7-day rule goes.
    resumed = await admin.post(f"/api/certificates/{opted['id']}/opt-out", {"opted_out": False})
    assert resumed.status == 200 and resumed.body["opted_out_at"] is None
    platform.clock.set(datetime(2026, 12, 6, 21, 0, tzinfo=TZ))
    await monitor.run_once()
    assert len(await reminders(platform)) == 4, "no reminder texted at night"
    platform.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=TZ))
    await monitor.run_once()
    assert len(await reminders(platform)) == 5
    platform.clock.set(datetime(2027, 1, 10, 10, 0, tzinfo=TZ))  # 戊's link: its expiry + 30 days passed
    assert (await anyone.get(f"/api/certificate-links/{token}")).code == "certificate_link_expired"
    events = (await (await platform.login("auditor1")).get("/api/audit", action="certificate.opt_out")).body
    assert [e["detail"]["by"] for e in events] == ["holder"]


async def test_a_reminder_reaches_the_sms_gateway_once(settings: Settings, clock: ManualClock,
                                                        receiver: Receiver) -> None:  # noqa: F811
    before = len(receiver.received())
    async with running(webhook(settings, receiver), clock) as platform:
        admin = await platform.login("admin")
        assert (await upload(admin, csv_file("己,13900139009,,居住证,G-3,2026-11-26"))).body["created"] == 1
        for _ in range(2):
            await platform.app[MONITOR].run_once()
            await platform.app[NOTIFY].deliver_due()
        got = [g for g in receiver.received()[before:] if g["body"]["kind"] == "certificate_reminder"]
        assert len(got) == 1 and got[0]["valid"] and got[0]["body"]["to"] == "13900139009", got
        assert "还有 3 天" in got[0]["body"]["text"]
        assert [m["state"] for m in await reminders(platform)] == ["sent"]


async def test_a_case_done_for_the_renewing_item_renews_and_the_report_counts_what_followed(platform: Platform) -> None:
    admin, worker, clerk = await platform.login("admin"), await platform.login("worker1"), await platform.login("clerk2")
    org = (await admin.get("/api/org")).body
    ga = next(d["id"] for d in org["departments"] if d["code"] == "GA")
    item = (await admin.post("/api/items", {"code": "GA-901", "name": "居住证签注", "department_id": ga,
                                            "level": "district"})).body
    kind = (await admin.post("/api/certificate-types", {"name": "居住证（签注）", "item_id": item["id"],
                                                         "reminder_days": [30, 7]})).body
    p4_id = id_number("33020319900202456")
    await upload(admin, csv_file(
        "周一,13900139101,,居住证（签注）,P1,2026-12-10",  # 17 days: 30-day rule; renewed by a case (phone)
        "周二,13900139102,,居住证（签注）,P2,2026-11-28",  # 5 days: 7-day rule; only consults, opted out
        "周三,13900139103,,居住证（签注）,P3,2026-12-20",  # 27 days: 30-day rule, later the 7-day one
        f"周四,13900139104,{p4_id},居住证（签注）,P4,2026-12-05",  # 12 days: 30-day rule; renewed (ID number)
    ))
    await platform.app[MONITOR].run_once()
    assert len(await reminders(platform)) == 4

    async def served(resident: dict[str, Any], result: str) -> int:
        ticket = await take(worker, item["id"], resident.pop("name"), resident)
        window = next(w["id"] for w in clerk.user["windows"])
        assert (await clerk.post(f"/api/windows/{window}/call-next")).body["id"] == ticket["id"]
        assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
        done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": result})
        assert done.status == 200, done
        return int(ticket["id"])

    await served({"name": "周二", "phone": "13900139102"}, "consultation_only")  # not renewed: only advice
    p1_case = await served({"name": "周一", "phone": "13900139101"}, "done")
    await served({"name": "周四", "id_number": p4_id}, "done")
    await served({"name": "别人", "phone": "13900139999"}, "done")  # someone else's case renews nothing
    shown = {c["number"]: c for c in await registry(admin, type_id=kind["id"])}
    assert (shown["P1"]["renewal_source"], shown["P1"]["renewal_ticket_id"]) == ("case", p1_case)
    assert shown["P4"]["renewal_source"] == "case"
    assert shown["P2"]["renewed_at"] is None and shown["P3"]["renewed_at"] is None
    assert (await admin.post(f"/api/certificates/{shown['P2']['id']}/opt-out", {"opted_out": True})).status == 200

    platform.clock.set(datetime(2026, 12, 13, 10, 0, tzinfo=TZ))  # P3: 7 days left
    await platform.app[MONITOR].run_once()
    assert len(await reminders(platform)) == 5, "only P3's 7-day rule: P1 and P4 renewed, P2 opted out"
    admin = await platform.login("admin")
    renewed = await admin.post(f"/api/certificates/{shown['P3']['id']}/renewed")
    assert renewed.status == 200 and renewed.body["renewal_source"] == "admin"
    assert (await admin.post(f"/api/certificates/{shown['P3']['id']}/renewed")).code == "certificate_already_renewed"
    assert (await admin.post("/api/certificates/999999/renewed")).code == "certificate_not_found"

    # By hand: 11-23 four reminders (P1 30, P2 7, P3 30, P4 30), 12-13 one (P3 7). Renewals:
    # P1 and P4 the same day as theirs, P3 the same day as its second (20 days after its first).
    supervisor = await platform.login("supervisor1")
    report = (await supervisor.get("/api/certificates/report", start="2026-11-01", end="2026-12-31")).body
    figures = {"reminders": 5, "certificates": 4, "renewed": 3, "renewal_rate": 0.75, "opted_out": 1}
    assert report["total"] == figures and report["within_days"] == 30
    line = next(t for t in report["types"] if t["type_id"] == kind["id"])
    assert {k: line[k] for k in figures} == figures
    assert line["by_rule"] == [{"days_before": 30, "reminders": 3}, {"days_before": 7, "reminders": 2}]
    assert report["months"] == [
        {"month": "2026-11", "reminders": 4, "certificates": 4, "renewed": 3, "renewal_rate": 0.75, "opted_out": 1},
        {"month": "2026-12", "reminders": 1, "certificates": 1, "renewed": 1, "renewal_rate": 1.0, "opted_out": 0},
    ]
    tight = (await supervisor.get("/api/certificates/report", start="2026-11-01", end="2026-12-31",
                                  within_days=10)).body
    assert tight["total"]["renewed"] == 3 and tight["months"][0]["renewed"] == 2, "P3 renewed 20 days after November's"
    december = (await admin.get("/api/certificates/report", start="2026-12-01", end="2026-12-31")).body
    assert december["total"] == {"reminders": 1, "certificates": 1, "renewed": 1, "renewal_rate": 1.0, "opted_out": 0}
    assert (await admin.get("/api/certificates/report", start="2026-12-31", end="2026-12-01")).code == "period_invalid"
    assert (await admin.get("/api/certificates/report", end="0001-01-02")).code == "period_invalid"
    assert (await admin.get("/api/certificates/report", start="2026-01-01", end="9999-12-31")).code == "period_invalid"


async def test_the_demo_certificates_expire_in_the_coming_weeks(platform: Platform) -> None:
    from server.keys import DB, DOMAIN
    from server.seed import seed_demo_certificates

    app, today = platform.app, date(2026, 11, 23)
    assert await seed_demo_certificates(app[DB], app[DOMAIN].sealer, today) == 8
    assert await seed_demo_certificates(app[DB], app[DOMAIN].sealer, today) == 0, "seeding twice adds nothing"
    await app[MONITOR].run_once()
    assert len(await reminders(platform)) == 7, "all but the one 180 days ahead are within a rule"
