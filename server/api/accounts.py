"""Login, who am I, and user administration."""

from __future__ import annotations

from aiohttp import web

from server.api.base import EVERYONE, OVERSIGHT, actor, client_ip, int_param, ok, parse, query, route
from server.api.schemas import ClerkQuery, Login, PasswordChange, UserIn, UserPatch, UserQuery
from server.domain import accounts, logins
from server.keys import DOMAIN, TOKENS
from server.models import AuthSession, Role, User


def _signed_in(request: web.Request, user: User, session: AuthSession) -> web.Response:
    token, expires = request.app[TOKENS].issue(user.id, user.role.value, session.id)
    return ok({"token": token, "expires_at": expires.isoformat(), "user": accounts.user_view(user)})


@route("POST", "/api/auth/login", "登录：返回令牌与用户信息（失败过多按地址与账号限流，429 附 Retry-After）",
       body=Login, auth=False, tag="auth")
async def login(request: web.Request) -> web.Response:
    body = await parse(request, Login)
    user, session = await request.app[DOMAIN].login(body.username, body.password, client_ip(request))
    return _signed_in(request, user, session)


@route("POST", "/api/auth/logout", "退出登录：本令牌立即失效（各节点、已连接的实时通道一并断开）", roles=EVERYONE, tag="auth")
async def logout(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        await logins.logout(uow, who)
    return web.Response(status=204)


@route("POST", "/api/auth/password", "修改本人密码：需当前密码；此前签发的全部令牌失效，返回新令牌",
       body=PasswordChange, roles=EVERYONE, tag="auth")
async def change_password(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, PasswordChange)
    user, session = await request.app[DOMAIN].change_password(who, body.current_password, body.new_password)
    return _signed_in(request, user, session)


@route("GET", "/api/me", "当前用户（云窗口人员含所值守窗口及其服务部门）", roles=EVERYONE, tag="auth")
async def me(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        user = await accounts.load_user(uow, who.user_id)
        assert user is not None
        return ok(accounts.user_view(user))


@route("GET", "/api/users", "用户列表（管理员）", roles=("admin",), query=UserQuery, tag="admin")
async def list_users(request: web.Request) -> web.Response:
    who = await actor(request)
    role = query(request, UserQuery).role
    async with request.app[DOMAIN].unit() as uow:
        users = await accounts.list_users(uow, who, Role(role) if role else None)
        return ok([accounts.user_view(u) for u in users])


@route("GET", "/api/clerks", "云窗口工作人员列表（部门负责人开潮汐窗口时选人；限本人负责的部门）",
       roles=OVERSIGHT, query=ClerkQuery, tag="supervision")
async def list_clerks(request: web.Request) -> web.Response:
    who = await actor(request)
    department_id = query(request, ClerkQuery).department_id
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await accounts.list_clerks(uow, who, department_id))


@route("POST", "/api/users", "新建用户（管理员）", body=UserIn, roles=("admin",), tag="admin")
async def create_user(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, UserIn)
    async with request.app[DOMAIN].unit() as uow:
        user = await accounts.create_user(uow, who, **{**body.model_dump(), "role": Role(body.role)})
        user = await accounts.load_user(uow, user.id)
        assert user is not None
        return ok(accounts.user_view(user), status=201)


@route("PATCH", "/api/users/{user_id}", "修改用户（管理员）", body=UserPatch, roles=("admin",), tag="admin")
async def update_user(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, UserPatch)
    async with request.app[DOMAIN].unit() as uow:
        changes = body.model_dump()
        changes["role"] = Role(changes["role"]) if changes["role"] else None
        user = await accounts.update_user(uow, who, int_param(request, "user_id"), **changes)
        return ok(accounts.user_view(user))
