"""Route registry (feeds the OpenAPI document), request parsing and the error middleware."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.domain.context import Actor
from server.domain.errors import DomainError, Forbidden, Unauthorized
from server.keys import DOMAIN, SETTINGS, TOKENS

log = logging.getLogger("yunbang.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
MAX_JSON = 64 * 1024


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    auth: bool = True
    roles: tuple[str, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    tag: str = ""
    during_enrolment: bool = False


ROUTES: list[Route] = []
ACTOR = web.RequestKey("actor", Actor)

# Role groups routes name; the auditor is in none of them but EVERYONE (docs/security.md).
STAFF = ("worker", "clerk", "expert", "supervisor", "admin")
EVERYONE = (*STAFF, "auditor")
CASE_PARTIES = ("worker", "clerk", "expert")
TICKET_READERS = ("worker", "clerk", "supervisor", "admin")
OVERSIGHT = ("supervisor", "admin")


def route(
    method: str,
    path: str,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    auth: bool = True,
    roles: tuple[str, ...] = (),
    query: dict[str, str] | None = None,
    tag: str = "",
    during_enrolment: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a route. An authenticated route must name the roles it admits: that list is the
    first gate (403 ``role_forbidden`` for any other role) and what OpenAPI's ``x-roles`` says;
    the domain keeps the finer rules (whose case, which queue). A session that must first enrol
    a second factor reaches only routes marked ``during_enrolment`` (403
    ``2fa_enrolment_required`` elsewhere, decided where the actor is loaded)."""
    if auth and not roles:
        raise ValueError(f"{method} {path}: an authenticated route must name its roles")
    unknown = set(roles) - set(EVERYONE)
    if unknown:
        raise ValueError(f"{method} {path}: unknown roles {sorted(unknown)}")

    def register(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if auth:
                who = await actor(request, enrolment_ok=during_enrolment)
                if who.role.value not in roles:
                    raise Forbidden("role_forbidden", "您的角色无权执行此操作", role=who.role.value, allowed=list(roles))
            return await handler(request)

        guarded.__name__, guarded.__module__ = handler.__name__, handler.__module__
        ROUTES.append(Route(method, path, guarded, summary, body, auth, roles, query or {}, tag, during_enrolment))
        return handler

    return register


def error_response(http_status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail:
        error["detail"] = detail
    return web.json_response({"error": error}, status=http_status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def parse(request: web.Request, model: type[M]) -> M:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise DomainError("body_too_large", "请求内容过大")
    raw = await request.content.read(MAX_JSON + 1)
    if len(raw) > MAX_JSON:
        raise DomainError("body_too_large", "请求内容过大")
    try:
        data = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DomainError("malformed_json", "请求内容不是合法的 JSON") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        raise InvalidInput(problems) from exc


class InvalidInput(DomainError):
    status = 422

    def __init__(self, problems: list[dict[str, str]]) -> None:
        fields = "、".join(p["field"] or "请求" for p in problems)
        super().__init__("invalid_input", f"输入有误：{fields}", problems=problems)


def int_param(request: web.Request, name: str) -> int:
    raw = request.match_info.get(name) or request.query.get(name, "")
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidInput([{"field": name, "problem": "must be an integer"}]) from exc


def optional_int(request: web.Request, name: str) -> int | None:
    return int_param(request, name) if request.query.get(name) else None


def client_ip(request: web.Request) -> str:
    """The caller's address; behind a trusted reverse proxy, the one it forwarded for."""
    remote = request.remote or ""
    if _trusted(remote, request.app[SETTINGS].trusted_proxies):
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()[:64]
    return remote


async def actor(request: web.Request, *, enrolment_ok: bool = False) -> Actor:
    """The caller, from the bearer token; read once per request (the route's gate reads it)."""
    cached = request.get(ACTOR)
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("auth_required", "请先登录")
    user_id, session_id = request.app[TOKENS].claims(header[7:].strip())
    who = await request.app[DOMAIN].actor(user_id, client_ip(request), session_id, enrolment_ok=enrolment_ok)
    request[ACTOR] = who
    return who


def _trusted(remote: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(remote)
        return any(address in ipaddress.ip_network(n, strict=False) for n in networks)
    except ValueError:
        return False


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become HTTP responses here and only here."""
    try:
        return await handler(request)
    except DomainError as exc:
        headers = {}
        if "retry_after" in exc.detail:
            headers["Retry-After"] = str(exc.detail["retry_after"])
        response = error_response(exc.status, exc.code, exc.message, exc.detail)
        response.headers.update(headers)
        return response
    except web.HTTPNotFound:
        if not request.path.startswith("/api/"):
            raise
        return error_response(404, "not_found", "接口不存在", {"path": request.path})
    except web.HTTPMethodNotAllowed as exc:
        return error_response(405, "method_not_allowed", "不支持该请求方法", {"allowed": sorted(exc.allowed_methods)})
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")
