"""Login, who am I, and user administration."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, client_ip, int_param, ok, optional_int, parse, route
from server.api.schemas import Login, UserIn, UserPatch
from server.domain import accounts
from server.keys import DOMAIN, TOKENS
from server.models import Role


@route("POST", "/api/auth/login", "登录：返回令牌与用户信息", body=Login, auth=False, tag="auth")
async def login(request: web.Request) -> web.Response:
    body = await parse(request, Login)
    async with request.app[DOMAIN].unit() as uow:
        user = await accounts.authenticate(uow, body.username, body.password, client_ip(request))
        view = accounts.user_view(user)
    token, expires = request.app[TOKENS].issue(user.id, user.role.value)
    return ok({"token": token, "expires_at": expires.isoformat(), "user": view})


@route("GET", "/api/me", "当前用户（云窗口人员含所值守窗口及其服务部门）", tag="auth")
async def me(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        user = await accounts.load_user(uow, who.user_id)
        assert user is not None
        return ok(accounts.user_view(user))


@route("GET", "/api/users", "用户列表（管理员）", roles=("admin",), query={"role": "string"}, tag="admin")
async def list_users(request: web.Request) -> web.Response:
    who = await actor(request)
    role = request.query.get("role")
    async with request.app[DOMAIN].unit() as uow:
        users = await accounts.list_users(uow, who, Role(role) if role in Role.__members__ else None)
        return ok([accounts.user_view(u) for u in users])


@route("GET", "/api/clerks", "云窗口工作人员列表（部门负责人开潮汐窗口时选人；限本人负责的部门）",
       roles=("supervisor", "admin"), query={"department_id": "integer"}, tag="supervision")
async def list_clerks(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await accounts.list_clerks(uow, who, optional_int(request, "department_id")))


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
        user = await accounts.update_user(uow, who, int_param(request, "user_id"), **body.model_dump())
        return ok(accounts.user_view(user))
