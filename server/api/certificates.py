"""证照到期提醒: certificate types and their rules, the registry and its import, the report
(administrators); the reminder's link and its opt-out (the holder, without login)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.api.base import actor, client_ip, int_param, ok, parse, query, route
from server.api.responses import (
    Certificate,
    CertificateImport,
    Certificates,
    CertificateType,
    PublicReminder,
    ReminderReport,
)
from server.api.schemas import (
    CertificateOptOut,
    CertificateQuery,
    CertificateTypeIn,
    ReminderReportQuery,
)
from server.domain import certificates
from server.domain.errors import TooLarge
from server.keys import DOMAIN

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@route("GET", "/api/certificate-types", "证照类型及其提醒规则（管理员）", roles=("admin",), tag="certificates",
       response=list[CertificateType])
async def list_types(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await certificates.types(uow, who))


@route("POST", "/api/certificate-types", "新增证照类型：续办事项和提醒规则（到期前多少天，如 90/30/7）（管理员）",
       body=CertificateTypeIn, roles=("admin",), tag="certificates", response=CertificateType)
async def add_type(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, CertificateTypeIn)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.save_type(uow, who, None, name=body.name, item_id=body.item_id,
                                               reminder_days=body.reminder_days, active=body.active), status=201)


@route("PUT", "/api/certificate-types/{type_id}", "修改证照类型、续办事项或提醒规则，或停用（管理员）",
       body=CertificateTypeIn, roles=("admin",), tag="certificates", response=CertificateType)
async def save_type(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, CertificateTypeIn)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.save_type(uow, who, int_param(request, "type_id"), name=body.name,
                                               item_id=body.item_id, reminder_days=body.reminder_days,
                                               active=body.active))


@route("POST", "/api/certificates/import",
       "导入证照（CSV 或 XLSX 文件作请求体；表头：持证人、手机号、身份证号（可选）、证照类型、证照编号、到期日期）："
       "正确的行按类型和编号新增或更新，错误的行逐行报告行号和原因、不导入（管理员）",
       roles=("admin",), tag="certificates",
       content={"text/csv": {"schema": {"type": "string", "format": "binary"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
       response=CertificateImport)
async def import_certificates(request: web.Request) -> web.Response:
    who = await actor(request)
    limit = certificates.MAX_IMPORT_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge("import_too_large", f"文件过大：不超过 {limit // 1024 // 1024} MB")
    data = await request.content.read(limit + 1)
    rows = await asyncio.to_thread(certificates.read_table, data)  # openpyxl and csv: off the loop
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.import_rows(uow, who, rows))


@route("GET", "/api/certificates", "证照登记（管理员）：新的在前，手机号和身份证号脱敏；查看留痕", query=CertificateQuery,
       roles=("admin",), tag="certificates", response=Certificates)
async def list_certificates(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, CertificateQuery)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.listing(uow, who, type_id=q.type_id, q=q.q, state=q.state,
                                             before_id=q.before_id, limit=q.limit or 100))


@route("POST", "/api/certificates/{certificate_id}/opt-out", "停止或恢复一本证照的到期提醒（管理员，如持证人来电要求）",
       body=CertificateOptOut, roles=("admin",), tag="certificates", response=Certificate)
async def opt_out(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, CertificateOptOut)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.set_opt_out(uow, who, int_param(request, "certificate_id"), body.opted_out))


@route("POST", "/api/certificates/{certificate_id}/renewed", "记为已续办（在窗口或其他渠道办理的；管理员）",
       roles=("admin",), tag="certificates", response=Certificate)
async def renewed(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.mark_renewed(uow, who, int_param(request, "certificate_id")))


@route("GET", "/api/certificates/report", "提醒成效：各类型、各规则、各月发送的提醒，及提醒后 N 天内续办的数量",
       query=ReminderReportQuery, roles=("supervisor", "admin"), tag="certificates", response=ReminderReport)
async def report(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, ReminderReportQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await certificates.report(uow, who, start=q.start, end=q.end, within_days=q.within_days or 30))


@route("GET", "/api/certificate-links/{token}", "到期提醒链接的内容：证照（脱敏）、续办事项及材料（无需登录；过期后 410）",
       auth=False, tag="certificates", response=PublicReminder)
async def read_link(request: web.Request) -> web.Response:
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.read_link(uow, request.match_info["token"][:200]))


@route("POST", "/api/certificate-links/{token}/opt-out", "持证人从提醒链接退订：该证照不再提醒（无需登录）",
       auth=False, tag="certificates", response=PublicReminder)
async def opt_out_by_link(request: web.Request) -> web.Response:
    async with request.app[DOMAIN].unit() as uow:
        return ok(await certificates.opt_out_by_link(uow, request.match_info["token"][:200], client_ip(request)))
