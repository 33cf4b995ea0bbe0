"""群众/企业 sign in on their own phone (屏对屏): a code by SMS, the privacy notice."""

from __future__ import annotations

from aiohttp import web

from server.api.accounts import signed_in
from server.api.base import client_ip, ok, parse, route
from server.api.responses import CodeSent, PrivacyNotice, SignedIn
from server.api.schemas import ResidentPhone, ResidentSignIn
from server.domain import residents
from server.keys import DOMAIN


@route("GET", "/api/resident/privacy", "个人信息保护告知书（群众/企业首次登录须同意；无需登录）",
       auth=False, tag="resident", response=PrivacyNotice)
async def privacy(request: web.Request) -> web.Response:
    return ok(residents.privacy_notice())


@route("POST", "/api/resident/code", "获取短信验证码（群众/企业登录）：同一号码 60 秒一次、每小时 5 次，同一地址每小时 20 次，"
       "超出 429 附 Retry-After；验证码 5 分钟内有效", body=ResidentPhone, auth=False, tag="resident", response=CodeSent)
async def send_code(request: web.Request) -> web.Response:
    body = await parse(request, ResidentPhone)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await residents.send_code(uow, body.phone, client_ip(request)), status=201)


@route("POST", "/api/resident/sign-in", "以短信验证码登录（首次登录即开户，须同意告知书；企业另填统一社会信用代码与名称）："
       "验证码错误 401 code_invalid（每个码最多试 5 次），过期 410 code_expired",
       body=ResidentSignIn, auth=False, tag="resident", response=SignedIn)
async def sign_in(request: web.Request) -> web.Response:
    body = await parse(request, ResidentSignIn)
    user, session = await request.app[DOMAIN].resident_sign_in(
        body.phone, body.code, client_ip(request), consent=body.consent,
        firm=body.firm.model_dump() if body.firm is not None else None)
    return await signed_in(request, user, session)
