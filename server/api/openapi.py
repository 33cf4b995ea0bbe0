"""The OpenAPI 3.1 document, built from the route registry and the pydantic bodies."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from server.api.base import ROUTES, ok, route

STRING_PATH_PARAMS = frozenset({"upload_id", "key"})  # opaque ids; every other path id is a number

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


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__module__.rsplit(".", 1)[-1] + "_" + r.handler.__name__.strip("_"),
            "tags": [r.tag] if r.tag else [],
            "responses": {
                "2XX": {"description": "成功"},
                "default": {"description": "错误", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        params = [
            {"name": n, "in": "path", "required": True,
             "schema": {"type": "string" if n in STRING_PATH_PARAMS else "integer"}}
            for n in re.findall(r"{(\w+)}", r.path)
        ]
        params += [
            {"name": n, "in": "query", "required": False,
             "schema": {"type": "string", "format": t} if t == "date-time" else {"type": t}}
            for n, t in r.query.items()
        ]
        if params:
            op["parameters"] = params
        if r.body is not None:
            schema = r.body.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[r.body.__name__] = schema
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{r.body.__name__}"}}},
            }
        if r.auth:
            op["security"] = [{"bearer": []}]
        if r.roles:
            op["x-roles"] = list(r.roles)
        if r.during_enrolment:
            op["x-during-2fa-enrolment"] = True
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "yunbang 云帮办 API", "version": "0.1.0",
                 "description": "远程视频受理（帮办）平台。错误统一为 {error:{code,message}}；实时事件见 docs/protocol.md。"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


@route("GET", "/api/openapi.json", "本文档", auth=False, tag="ops")
async def openapi(request: web.Request) -> web.Response:
    return ok(build())
