"""Route registry (feeds the OpenAPI document), request parsing and the error middleware."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from server import logs
from server.domain.context import Actor
from server.domain.errors import DomainError, Forbidden, Unauthorized
from server.inputs import MAX_ID, parse_id, unstorable
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
    query: type[BaseModel] | None = None
    tag: str = ""
    during_enrolment: bool = False
    content: dict[str, Any] = field(default_factory=dict)  # a body that is not JSON: OpenAPI content
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)  # request headers: JSON Schemas
    response: Any = None  # the success body: a model, list[model], or None for 204 without a body
    no_content: str = ""  # when a route with a body answers 204 instead (and why)
    files: tuple[str, ...] = ()  # a route answering a file: its content types (``response`` is then None)
    answer: TypeAdapter[Any] | None = field(init=False, repr=False)  # validates the body: `checked`

    def __post_init__(self) -> None:
        self.answer = None if self.response is None else TypeAdapter(self.response)


ROUTES: list[Route] = []
ACTOR = web.RequestKey("actor", Actor)

# Role groups routes name; the auditor is in none of them but EVERYONE (docs/security.md).
STAFF = ("worker", "clerk", "expert", "supervisor", "admin")
EVERYONE = (*STAFF, "auditor", "resident")
# 群众/企业 on their own phone (屏对屏) read the catalogue and the org, and are a party to the
# cases they took themselves (in the worker's seat)
READERS = (*STAFF, "resident")
CASE_PARTIES = ("worker", "clerk", "expert", "resident")
TICKET_READERS = ("worker", "clerk", "supervisor", "admin", "resident")
OVERSIGHT = ("supervisor", "admin")


def route(
    method: str,
    path: str,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    auth: bool = True,
    roles: tuple[str, ...] = (),
    query: type[BaseModel] | None = None,
    tag: str = "",
    during_enrolment: bool = False,
    content: dict[str, Any] | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
    response: Any,
    no_content: str = "",
    files: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register a route. An authenticated route must name the roles it admits: that list is the
    first gate (403 ``role_forbidden`` for any other role) and what OpenAPI's ``x-roles`` says;
    the domain keeps the finer rules (whose case, which queue). A session that must first enrol
    a second factor reaches only routes marked ``during_enrolment`` (403
    ``2fa_enrolment_required`` elsewhere, decided where the actor is loaded). ``query`` is the
    model `query()` reads the query string with; ``content`` and ``headers`` document what a
    route reads that is not JSON (a file, an upload offset). Every route says what it answers:
    ``response`` is the model of its JSON success body (``list[Model]`` for a list; models in
    ``server/api/responses.py``), or None for a 204 without a body; ``no_content`` says when a
    route with a body answers 204 instead. Clients are generated from that, and with
    ``check_responses`` on (the tests) each answer is validated against it (`checked`). A route
    that answers a file (an export) names its content types in ``files`` instead, with
    ``response=None``."""
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
            answer = await handler(request)
            return checked(entry, answer) if request.app[SETTINGS].check_responses else answer

        guarded.__name__, guarded.__module__ = handler.__name__, handler.__module__
        entry = Route(method, path, guarded, summary, body, auth, roles, query, tag, during_enrolment,
                      content or {}, headers or {}, response, no_content, files)
        ROUTES.append(entry)
        return handler

    return register


def checked(r: Route, answer: web.StreamResponse) -> web.StreamResponse:
    """The route's answer if it is what the route declares, else a loud 500: a JSON success body
    must validate against ``r.response`` (strictly: no extra keys, no "5" for 5), a 204 must be
    declared. On in the tests (``YUNBANG_CHECK_RESPONSES``), so every API test checks the contract."""
    if not 200 <= answer.status < 300:
        return answer
    if r.files:
        if answer.status == 200 and isinstance(answer, web.Response) and answer.content_type in r.files:
            return answer
        problem = [{"field": "", "problem": f"not one of the declared files {list(r.files)}"}]
    elif answer.status == 204:
        if r.answer is None or r.no_content:
            return answer
        problem = [{"field": "", "problem": "204 without a body, but the route declares one"}]
    elif r.answer is None:
        problem = [{"field": "", "problem": f"{answer.status} with a body, but the route declares 204"}]
    elif not isinstance(answer, web.Response) or answer.content_type != "application/json" \
            or not isinstance(answer.body, bytes):
        problem = [{"field": "", "problem": "not a JSON body"}]
    else:
        try:
            r.answer.validate_json(answer.body, strict=True)
            return answer
        except ValidationError as exc:
            problem = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"],
                        "got": repr(e.get("input"))[:100]} for e in exc.errors()]
    log.error("%s %s answered %s, not what it declares: %s", r.method, r.path, answer.status, problem)
    return error_response(500, "response_mismatch", "服务器内部错误：应答与接口声明不符",
                          {"route": f"{r.method} {r.path}", "problems": problem})


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
        data = json.loads(raw or b"{}", parse_int=_bounded_int)
    except NumberTooLong as exc:
        raise InvalidInput([{"field": "", "problem": f"numbers have at most {MAX_DIGITS} digits"}]) from exc
    except (ValueError, RecursionError) as exc:
        # ValueError: not JSON, not UTF-8; RecursionError: nested deeper than the parser's
        # stack (64 KB of "[" is enough).
        raise DomainError("malformed_json", "请求内容不是合法的 JSON") from exc
    return validated(model, data)


MAX_DIGITS = 100


class NumberTooLong(ValueError):
    """An integer no field takes (Python itself refuses to read past 4300 digits)."""


def _bounded_int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise NumberTooLong(text[:20])
    return int(text)


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from exc
    except RecursionError as exc:  # a structure nested past what the validator walks
        raise InvalidInput([{"field": "", "problem": "nested too deeply"}]) from exc


def problems(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]


def query(request: web.Request, model: type[M]) -> M:
    """The query string, validated by the route's query model (a repeated name: its first value)."""
    return validated(model, {name: request.query[name] for name in request.query})


class InvalidInput(DomainError):
    status = 422

    def __init__(self, problems: list[dict[str, str]]) -> None:
        fields = "、".join(p["field"] or "请求" for p in problems)
        super().__init__("invalid_input", f"输入有误：{fields}", problems=problems)


def int_param(request: web.Request, name: str) -> int:
    """An id from the path: one rule for every id (`server.inputs`), 422 ``invalid_input`` else."""
    value = parse_id(request.match_info.get(name, ""))
    if value is None:
        raise InvalidInput([{"field": name, "problem": f"must be an id from 1 to {MAX_ID}"}])
    return value


def client_ip(request: web.Request) -> str:
    """The caller's address; behind a trusted reverse proxy, the one it forwarded for."""
    remote = request.remote or ""
    if via_trusted_proxy(request):
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()[:64]
    return remote


async def actor(request: web.Request, *, enrolment_ok: bool = False) -> Actor:
    """The caller, from the bearer token; read once per request (the route's gate reads it)."""
    cached: Actor | None = request.get(ACTOR)
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("auth_required", "请先登录")
    user_id, session_id = request.app[TOKENS].claims(header[7:].strip())
    who = await request.app[DOMAIN].actor(user_id, client_ip(request), session_id, enrolment_ok=enrolment_ok)
    request[ACTOR] = who
    logs.bind(user_id=who.user_id)  # on this request's lines from here on (server/weblog.py)
    return who


def via_trusted_proxy(request: web.Request) -> bool:
    """Whether the request came from a reverse proxy in ``YUNBANG_TRUSTED_PROXIES`` (whose
    ``X-Forwarded-*`` headers are then believed)."""
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in request.app[SETTINGS].trusted_proxies)


def _unstorable_in_url(request: web.Request) -> list[dict[str, str]]:
    """Path and query values no route could store or look up (a NUL, a lone surrogate)."""
    found = []
    for where, values in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in values:
            problem = unstorable(name) or unstorable(value)
            if problem:
                found.append({"field": f"{where}.{name}", "problem": problem})
    return found


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become HTTP responses here and only here."""
    try:
        if request.path.startswith("/api/") and (bad := _unstorable_in_url(request)):
            raise InvalidInput(bad)
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
        allowed = sorted(exc.allowed_methods)
        response = error_response(405, "method_not_allowed", "不支持该请求方法", {"allowed": allowed})
        response.headers["Allow"] = ", ".join(allowed)
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")
