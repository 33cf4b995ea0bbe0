"""Every route says what it answers (server/api/responses.py), the OpenAPI document carries it,
and while ``check_responses`` is on — in every test — an answer unlike its declaration is a 500,
so each API test also checks the response contract the browser client is generated from."""

from __future__ import annotations

import json
import typing
from typing import Any

from aiohttp import web
from pydantic import BaseModel, RootModel, TypeAdapter

import server.app  # noqa: F401  (registers every route)
from server.api.base import ROUTES, Route, checked
from server.api.openapi import build
from server.api.responses import Answer, absent
from server.config import Settings


def _models(response: Any) -> list[type[BaseModel]]:
    """The model a route answers with, or the model of its list."""
    if typing.get_origin(response) is list:
        (response,) = typing.get_args(response)
    assert isinstance(response, type) and issubclass(response, BaseModel), response
    return [response]


def test_every_route_declares_what_it_answers() -> None:
    assert len(ROUTES) > 50
    for r in ROUTES:
        if r.response is not None:
            _models(r.response)
    document = build()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            success = {k: v for k, v in op["responses"].items() if k.startswith("2")}
            assert success, f"{method} {path} documents no success answer"
            for status, answer in success.items():
                content = answer.get("content", {})
                files = content and all(c.get("schema", {}).get("format") == "binary" for c in content.values())
                assert status == "204" or "application/json" in content or files, (
                    f"{method} {path}: a {status} without a body schema (JSON, or files of named types)")


def test_answers_name_every_key_they_may_have() -> None:
    """Strict models: a key a handler adds without declaring it fails the tests, and the client
    types (generated) never have an index signature that would hide a typo."""
    for r in ROUTES:
        if r.response is None or issubclass(_models(r.response)[0], RootModel):
            continue
        schema = TypeAdapter(r.response).json_schema()
        for name, sub in [("", schema), *schema.get("$defs", {}).items()]:
            if sub.get("type") == "object" and "properties" in sub:
                assert sub.get("additionalProperties") is False, f"{r.method} {r.path}: {name or 'body'} is not strict"


class Pair(Answer):
    id: int
    note: str = absent()


def _route(response: Any, no_content: str = "") -> Route:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise AssertionError("not called")

    return Route("GET", "/api/pair", handler, "a pair", auth=False, response=response, no_content=no_content)


def _problem(answer: web.StreamResponse) -> dict[str, Any]:
    assert isinstance(answer, web.Response) and isinstance(answer.body, bytes)
    assert answer.status == 500, answer.status
    error = json.loads(answer.body)["error"]
    assert error["code"] == "response_mismatch"
    assert error["detail"]["route"] == "GET /api/pair"
    return error["detail"]


def test_an_answer_unlike_its_declaration_is_a_loud_500() -> None:
    pair, pairs = _route(Pair), _route(list[Pair])
    for good in (web.json_response({"id": 1}), web.json_response({"id": 1, "note": "n"}, status=201)):
        assert checked(pair, good) is good
    assert checked(pairs, (good := web.json_response([{"id": 1}, {"id": 2}]))) is good

    assert _problem(checked(pair, web.json_response({"id": 1, "extra": True})))["problems"][0]["field"] == "extra"
    assert _problem(checked(pair, web.json_response({"note": "n"})))["problems"][0]["field"] == "id"
    assert _problem(checked(pair, web.json_response({"id": "1"})))["problems"][0]["field"] == "id", "strict: no '1' for 1"
    assert _problem(checked(pair, web.json_response({"id": 1, "note": None})))["problems"][0]["field"] == "note", \
        "an absent key is left out, never null"
    assert _problem(checked(pairs, web.json_response([{"id": 1}, {}])))["problems"][0]["field"] == "1.id"
    assert _problem(checked(pair, web.Response(status=204)))
    assert _problem(checked(pair, web.Response(text="<p>1</p>", content_type="text/html")))
    assert _problem(checked(_route(None), web.json_response({"id": 1})))

    assert checked(_route(None), (empty := web.Response(status=204))) is empty
    assert checked(_route(Pair, no_content="nobody waits"), empty) is empty
    refused = web.json_response({"error": {"code": "x", "message": "y"}}, status=409)
    assert checked(pair, refused) is refused, "errors are the error middleware's, not the route's"


def test_responses_are_checked_where_asked_and_in_the_tests(settings: Settings) -> None:
    assert settings.check_responses, "tests/conftest.py's settings validate every answer"
    assert not Settings.from_env({}).check_responses
    assert Settings.from_env({"YUNBANG_CHECK_RESPONSES": "true"}).check_responses
