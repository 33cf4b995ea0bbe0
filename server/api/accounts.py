"""Login, who am I, and user administration."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import models
from server.api.base import (
    EVERYONE,
    OVERSIGHT,
    actor,
    client_ip,
    int_param,
    ok,
    parse,
    query,
    route,
)
from server.api.responses import (
    Clerk,
    Me,
    RecoveryCodes,
    SignedIn,
    TwoFactorEnrolment,
    TwoFactorReset,
    User,
)
from server.api.schemas import (
    ClerkQuery,
    Login,
    OtpCode,
    PasswordChange,
    TwoFactorOff,
    UserIn,
    UserPatch,
    UserQuery,
)
from server.domain import accounts, logins, two_factor
from server.keys import DOMAIN, SETTINGS, TOKENS
from server.models import AuthSession, Role

TWO_FACTOR_ROLES = tuple(r.value for r in Role if r in two_factor.ROLES)


async def _user_view(request: web.Request, user: models.User) -> dict[str, Any]:
    """The user as ``/api/me`` and the login answer show them: with their second factor's state,
    and the service's time zone (YUNBANG_TIMEZONE), in which the pages show clock times."""
    async with request.app[DOMAIN].unit(write=False) as uow:
        return {**accounts.user_view(user), "two_factor": await two_factor.status(uow, user),
                "service_timezone": request.app[SETTINGS].queue.timezone}


async def signed_in(request: web.Request, user: models.User, session: AuthSession) -> web.Response:
    token, expires = request.app[TOKENS].issue(user.id, user.role.value, session.id)
    return ok({"token": token, "expires_at": expires.isoformat(), "user": await _user_view(request, user)})


@route("POST", "/api/auth/login", "登录：返回令牌与用户信息。已开启两步验证的账号还需 otp（或 recovery_code），"
       "缺少时 401 otp_required、错误时 401 invalid_otp，均按失败计数（失败过多按地址与账号限流，429 附 Retry-After）",
       body=Login, auth=False, tag="auth", response=SignedIn)
async def login(request: web.Request) -> web.Response:
    body = await parse(request, Login)
    user, session = await request.app[DOMAIN].login(body.username, body.password, client_ip(request),
                                                    otp=body.otp, recovery_code=body.recovery_code)
    return await signed_in(request, user, session)


@route("POST", "/api/auth/logout", "退出登录：本令牌立即失效（各节点、已连接的实时通道一并断开）", roles=EVERYONE, tag="auth",
       during_enrolment=True, response=None)
async def logout(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        await logins.logout(uow, who)
    return web.Response(status=204)


@route("POST", "/api/auth/password", "修改本人密码：需当前密码；此前签发的全部令牌失效，返回新令牌",
       body=PasswordChange, roles=EVERYONE, tag="auth", response=SignedIn)
async def change_password(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, PasswordChange)
    user, session = await request.app[DOMAIN].change_password(who, body.current_password, body.new_password)
    return await signed_in(request, user, session)


@route("GET", "/api/me", "当前用户（云窗口人员含所值守窗口及其服务部门；two_factor：是否已开启、是否必须；"
       "service_timezone：服务时区，页面上的时刻按它显示）",
       roles=EVERYONE, tag="auth", during_enrolment=True, response=Me)
async def me(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        user = await accounts.load_user(uow, who.user_id)
    assert user is not None
    return ok(await _user_view(request, user))


@route("POST", "/api/auth/2fa/enrol", "开始绑定验证器：返回新密钥（仅此一次）、otpauth:// 地址与二维码（SVG data URL）；"
       "确认前不生效", roles=TWO_FACTOR_ROLES, tag="auth", during_enrolment=True, response=TwoFactorEnrolment)
async def begin_two_factor(request: web.Request) -> web.Response:
    who = await actor(request)
    domain = request.app[DOMAIN]
    async with domain.unit() as uow:
        return ok(await two_factor.begin_enrolment(uow, domain.two_factor_keys, who))


@route("POST", "/api/auth/2fa/confirm", "确认绑定：验证器上的验证码正确即开启两步验证，返回 10 个备用码（仅此一次）；"
       "本人其他会话失效", body=OtpCode, roles=TWO_FACTOR_ROLES, tag="auth", during_enrolment=True, response=RecoveryCodes)
async def confirm_two_factor(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, OtpCode)
    domain = request.app[DOMAIN]
    async with domain.unit() as uow:
        codes = await two_factor.confirm_enrolment(uow, domain.two_factor_keys, who, body.otp)
    return ok({"recovery_codes": codes})


@route("POST", "/api/auth/2fa/recovery-codes", "重新生成备用码（需当前验证码）：旧备用码全部作废，新码仅显示这一次",
       body=OtpCode, roles=TWO_FACTOR_ROLES, tag="auth", response=RecoveryCodes)
async def regenerate_recovery_codes(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, OtpCode)
    domain = request.app[DOMAIN]
    async with domain.unit() as uow:
        codes = await two_factor.regenerate_recovery_codes(uow, domain.two_factor_keys, who, body.otp)
    return ok({"recovery_codes": codes})


@route("DELETE", "/api/auth/2fa", "关闭两步验证（需验证码或当前密码；系统要求本角色使用时不可关闭）",
       body=TwoFactorOff, roles=TWO_FACTOR_ROLES, tag="auth", response=None)
async def turn_off_two_factor(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, TwoFactorOff)
    await request.app[DOMAIN].turn_off_two_factor(who, otp=body.otp, password=body.password)
    return web.Response(status=204)


@route("GET", "/api/users", "用户列表（管理员）：可按角色、所绑定的延伸点筛选", roles=("admin",), query=UserQuery, tag="admin", response=list[User])
async def list_users(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, UserQuery)
    async with request.app[DOMAIN].unit() as uow:
        users = await accounts.list_users(uow, who, Role(q.role) if q.role else None,
                                          extension_point_id=q.extension_point_id)
        return ok([accounts.user_view(u) for u in users])


@route("GET", "/api/clerks", "云窗口工作人员列表（部门负责人开潮汐窗口时选人；限本人负责的部门）",
       roles=OVERSIGHT, query=ClerkQuery, tag="supervision", response=list[Clerk])
async def list_clerks(request: web.Request) -> web.Response:
    who = await actor(request)
    department_id = query(request, ClerkQuery).department_id
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await accounts.list_clerks(uow, who, department_id))


@route("POST", "/api/users", "新建用户（管理员）", body=UserIn, roles=("admin",), tag="admin", response=User)
async def create_user(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, UserIn)
    async with request.app[DOMAIN].unit() as uow:
        created = await accounts.create_user(uow, who, **{**body.model_dump(), "role": Role(body.role)})
        user = await accounts.load_user(uow, created.id)
        assert user is not None
        return ok(accounts.user_view(user), status=201)


@route("PATCH", "/api/users/{user_id}", "修改用户（管理员）", body=UserPatch, roles=("admin",), tag="admin", response=User)
async def update_user(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, UserPatch)
    async with request.app[DOMAIN].unit() as uow:
        changes = body.model_dump()
        changes["role"] = Role(changes["role"]) if changes["role"] else None
        user = await accounts.update_user(uow, who, int_param(request, "user_id"), **changes)
        return ok(accounts.user_view(user))


@route("POST", "/api/users/{user_id}/2fa/reset", "重置用户的两步验证（管理员；如手机丢失）：清除绑定与备用码，"
       "该用户全部会话立即失效", roles=("admin",), tag="admin", response=TwoFactorReset)
async def reset_two_factor(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        user = await two_factor.reset(uow, who, int_param(request, "user_id"))
        return ok({"id": user.id, "username": user.username, "two_factor": await two_factor.status(uow, user)})
