"""The browser client and the server cannot drift apart silently: the client's typed API is
generated from web-client/openapi.json, which must be what the server builds now — answers and
socket event payloads included (server/api/responses.py, server/api/event_payloads.py) — and
docs/protocol.md's event tables must name those events and only keys their payloads have."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import TypeAdapter

from server.api.event_payloads import PAYLOADS
from server.api.openapi import build
from server.api.responses import Ticket

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "web-client" / "openapi.json"
EVENTS_TS = ROOT / "web-client" / "src" / "api" / "events.ts"
PROTOCOL = ROOT / "docs" / "protocol.md"


def test_checked_in_openapi_document_is_what_the_server_builds() -> None:
    import server.app  # noqa: F401  (registers every route)

    assert json.loads(CHECKED_IN.read_text(encoding="utf-8")) == json.loads(json.dumps(build())), (
        "web-client/openapi.json differs from the server's OpenAPI document: "
        "run `cd web-client && npm run openapi:refresh`, rebuild, and fix what no longer type-checks"
    )


def interface_keys(source: str, name: str) -> set[str]:
    match = re.search(rf"export interface {name} \{{(.*?)\n\}}", source, re.S)
    assert match, f"interface {name} not found in events.ts"
    return set(re.findall(r'^\s{2}"?([\w.\-]+)"?\s*:', match.group(1), re.M))


def protocol_tables() -> tuple[set[str], set[str]]:
    """Event names in the first column of docs/protocol.md's tables, split by direction."""
    to_client: set[str] = set()
    to_server: set[str] = set()
    section = ""
    for line in PROTOCOL.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            section = line
            continue
        cell = re.match(r"^\|\s*`([\w.\-]+)`\s*\|", line)
        if not cell:
            continue
        if "Client → server" in section or "Requests (client → server" in section:
            to_server.add(cell.group(1))
        elif "Server → client" in section or "Events (server → client)" in section:
            to_client.add(cell.group(1))
    return to_client, to_server


def test_socket_events_are_the_ones_the_protocol_defines() -> None:
    """What the server sends is `ServerEvents` (the client's types are generated from it); what
    the client sends is typed in events.ts. Both are the protocol's tables, name for name."""
    client_sends = interface_keys(EVENTS_TS.read_text(encoding="utf-8"), "ClientToServerEvents")
    to_client, to_server = protocol_tables()
    assert len(to_client) > 20 and len(to_server) > 8, "the protocol tables were not read"
    assert set(PAYLOADS) == to_client, (
        f"only in server/api/event_payloads.py: {sorted(set(PAYLOADS) - to_client)}; "
        f"only in docs/protocol.md: {sorted(to_client - set(PAYLOADS))}"
    )
    assert client_sends <= to_server, f"events.ts sends events docs/protocol.md does not define: {sorted(client_sends - to_server)}"
    assert to_server <= client_sends, f"requests the client has no type for: {sorted(to_server - client_sends)}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def payload_keys(cell: str) -> set[str]:
    """The keys a protocol table's payload cell says the payload has: quoted ("ticket_id") or in
    code (`position`), leaving out the prose after a dash, asides in parentheses, values, and
    the shapes named (Ticket, Track)."""
    text = cell.split(" — ")[0]
    while (shorter := re.sub(r"\([^()]*\)", "", text)) != text:
        text = shorter
    text = re.sub(r':\s*"[^"]*"(?:\s*\\?\|\s*"[^"]*")*', "", text)  # "reason": "logout"|"password"
    text = re.sub(r'\["[^\]]*\]', "", text)  # ["q", "h", …]: values
    text = re.sub(r":\s*(?:bool|int|str|number|string)\b", "", text)  # "paused": bool
    keys = set(re.findall(r'"(\w+)"', text))
    for code in re.findall(r"`([^`]*)`", text):
        keys |= set(re.findall(r"\b[a-z_]\w*", code))  # not Track, Invitation: shapes named in it
    return keys


def schema_names(schema: dict[str, object]) -> set[str]:
    """Every property name anywhere in a JSON Schema (nested objects and definitions included)."""
    names: set[str] = set()
    stack: list[object] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names |= set(properties)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def test_the_protocol_tables_name_only_keys_the_payloads_have() -> None:
    checked = 0
    section = ""
    for line in PROTOCOL.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            section = line
            continue
        cell = re.match(r"^\|\s*`([\w.\-]+)`\s*\|", line)
        if not cell or not ("Server → client" in section or "Events (server → client)" in section):
            continue
        event = cell.group(1)
        keys = payload_keys(_cells(line)[-1])
        unknown = keys - schema_names(TypeAdapter(PAYLOADS[event]).json_schema())
        assert not unknown, f"docs/protocol.md says {event} carries {sorted(unknown)}; its payload model has no such key"
        checked += bool(keys)
    assert checked > 15, "the payload columns were not read"


def test_the_protocols_ticket_example_is_a_ticket() -> None:
    text = PROTOCOL.read_text(encoding="utf-8").split("## Server → client events", 1)[1]
    example = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert example, "the Ticket example was not found"
    TypeAdapter(Ticket).validate_json(example.group(1), strict=True)


def test_every_event_the_client_listens_to_is_typed() -> None:
    """`live.on("…")` calls in the client name events the server sends (vue-tsc checks the types;
    this catches an untyped name slipping in through a cast)."""
    used: set[str] = set()
    for path in (ROOT / "web-client" / "src").rglob("*"):
        if path.suffix in (".ts", ".vue") and path.name != "schema.d.ts":
            used |= set(re.findall(r'live\.on\("([\w.\-]+)"', path.read_text(encoding="utf-8")))
    assert used, "no live.on calls found"
    assert used <= set(PAYLOADS), f"untyped events: {sorted(used - set(PAYLOADS))}"


def test_client_ticket_status_groups_are_the_servers() -> None:
    """The client's status groups (web-client/src/api/status.ts) are the enum's, value for value."""
    from server.models import TicketStatus

    source = (ROOT / "web-client" / "src" / "api" / "status.ts").read_text(encoding="utf-8")

    def client_group(name: str) -> list[str]:
        match = re.search(rf"export const {name}: readonly TicketStatus\[\] = \[(.*?)\];", source)
        assert match, f"{name} not found in status.ts"
        return re.findall(r'"(\w+)"', match.group(1))

    assert client_group("OPEN_STATES") == [s.value for s in TicketStatus.open_states()]
    assert client_group("IN_CALL_STATES") == [s.value for s in TicketStatus.in_call_states()]
