"""Small story helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


async def item_named(api: Api, name: str) -> dict[str, Any]:
    reply = await api.get("/api/items", q=name)
    assert reply.status == 200, reply
    matches = [i for i in reply.body if i["name"] == name]
    assert matches, f"no item {name}"
    return matches[0]


async def district_item(api: Api, department_code: str) -> dict[str, Any]:
    org = (await api.get("/api/org")).body
    dept = next(d for d in org["departments"] if d["code"] == department_code)
    items = (await api.get("/api/items", department_id=dept["id"], level="district")).body
    assert items, f"no district item for {department_code}"
    return items[0]


async def take(api: Api, item_id: int, name: str, **extra: Any) -> dict[str, Any]:
    reply = await api.post("/api/tickets", {"item_id": item_id, "resident": {"name": name}, **extra})
    assert reply.status == 201, reply
    return reply.body


def window_of(clerk: Api, index: int = 0) -> int:
    return int(clerk.user["windows"][index]["id"])
