"""The OpenAPI 3.1 document, built from the route registry and the pydantic bodies."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from server.api import event_payloads, responses
from server.api.base import ROUTES, Route, ok, route
from server.api.responses import OpenApiDocument
from server.inputs import MAX_ID

# Opaque ids; every other path id is a number the database can hold.
STRING_PATH_PARAMS = {"upload_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
# What a refusal can be (server/domain/errors.py): the code in the body says which.
ERROR_STATUSES = {
    "400": "请求有误（如 JSON 不合法）", "401": "未登录或令牌无效", "403": "无权执行", "404": "不存在",
    "409": "与当前状态冲突", "413": "内容过大", "422": "输入有误（invalid_input 附各字段问题）",
    "429": "尝试过多，稍后再试（附 Retry-After）",
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "zh-CN, for people"},
                "detail": {"type": "object"},
            },
        }
    },
}


def _model_schema(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a model (or of ``list[Model]``), its nested definitions moved into
    components."""
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        _component(schemas, name, sub)
    return schema


def _component(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One name, one shape: two models called alike (a request's and a response's) must not
    overwrite each other in the document."""
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas named {name} in the OpenAPI document")
    return {"$ref": f"#/components/schemas/{name}"}


def _reference(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """A model as a $ref into components (a list of models: an array of them)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return _component(schemas, model.__name__, _model_schema(model, schemas))
    return _model_schema(model, schemas)


def _responses(r: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    """What the route answers: its body (any 2xx), a 204 without one, and the errors."""
    success: dict[str, Any] = {}
    if r.files:
        binary = {"schema": {"type": "string", "format": "binary"}}
        success["200"] = {"description": "文件（Content-Disposition 给出文件名）",
                          "content": {kind: binary for kind in r.files}}
        return {**success, **{status: {"$ref": f"#/components/responses/Error{status}"} for status in ERROR_STATUSES}}
    if r.response is not None:
        success["2XX"] = {"description": "成功",
                          "content": {"application/json": {"schema": _reference(r.response, schemas)}}}
    if r.response is None or r.no_content:
        success["204"] = {"description": r.no_content or "成功，无内容"}
    return {**success, **{status: {"$ref": f"#/components/responses/Error{status}"} for status in ERROR_STATUSES}}


def _parameter_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: absent rather than null, no pydantic titles."""
    prop = {k: v for k, v in prop.items() if k not in ("title", "default") or (k == "default" and v is not None)}
    options = prop.pop("anyOf", None)
    if options:
        present = [o for o in options if o != {"type": "null"}]
        prop = {**(present[0] if len(present) == 1 else {"anyOf": present}), **prop}
    return prop


def _parameters(r: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": STRING_PATH_PARAMS.get(n, ID)}
        for n in re.findall(r"{(\w+)}", r.path)
    ]
    if r.query is not None:
        schema = _model_schema(r.query, schemas)
        for name, prop in schema["properties"].items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in schema.get("required", ()),
                                     "schema": _parameter_schema(prop)}
            if "description" in param["schema"]:
                param["description"] = param["schema"].pop("description")
            params.append(param)
    params += [{"name": n, "in": "header", "required": True, "schema": h} for n, h in r.headers.items()]
    return params


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__module__.rsplit(".", 1)[-1] + "_" + r.handler.__name__.strip("_"),
            "tags": [r.tag] if r.tag else [],
            "responses": _responses(r, schemas),
        }
        params = _parameters(r, schemas)
        if params:
            op["parameters"] = params
        if r.body is not None:
            schema = _model_schema(r.body, schemas)
            op["requestBody"] = {
                "required": bool(schema.get("required")),  # a body of defaults may be left out
                "content": {"application/json": {"schema": _component(schemas, r.body.__name__, schema)}},
            }
        elif r.content:
            op["requestBody"] = {"required": True, "content": r.content}
        if r.auth:
            op["security"] = [{"bearer": []}]
        if r.roles:
            op["x-roles"] = list(r.roles)
        if r.during_enrolment:
            op["x-during-2fa-enrolment"] = True
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for model in (*responses.SHARED, *event_payloads.SHARED):  # ServerEvents: every socket event's payload
        _reference(model, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "yunbang 云帮办 API", "version": "0.1.0",
                 "description": "远程视频受理（帮办）平台。错误统一为 {error:{code,message}}；实时事件见 docs/protocol.md。"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                f"Error{status}": {"description": what,
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for status, what in ERROR_STATUSES.items()
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


@route("GET", "/api/openapi.json", "本文档", auth=False, tag="ops", response=OpenApiDocument)
async def openapi(request: web.Request) -> web.Response:
    return ok(build())
