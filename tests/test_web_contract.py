"""The browser client and the server cannot drift apart silently: the client's typed API is
generated from web-client/openapi.json, which must be what the server builds now, and its
socket events (web-client/src/api/events.ts) must be the ones docs/protocol.md defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from server.api.openapi import build

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
    source = EVENTS_TS.read_text(encoding="utf-8")
    client_handles = interface_keys(source, "ServerToClientEvents")
    client_sends = interface_keys(source, "ClientToServerEvents")
    to_client, to_server = protocol_tables()
    assert len(to_client) > 20 and len(to_server) > 8, "the protocol tables were not read"
    assert client_handles == to_client, (
        f"only in events.ts: {sorted(client_handles - to_client)}; only in docs/protocol.md: {sorted(to_client - client_handles)}"
    )
    assert client_sends <= to_server, f"events.ts sends events docs/protocol.md does not define: {sorted(client_sends - to_server)}"
    assert to_server <= client_sends, f"requests the client has no type for: {sorted(to_server - client_sends)}"


def test_every_event_the_client_listens_to_is_typed() -> None:
    """`live.on("…")` calls in the client name events of events.ts (vue-tsc checks the types;
    this catches an untyped name slipping in through a cast)."""
    typed = interface_keys(EVENTS_TS.read_text(encoding="utf-8"), "ServerToClientEvents")
    used: set[str] = set()
    for path in (ROOT / "web-client" / "src").rglob("*"):
        if path.suffix in (".ts", ".vue") and path.name != "schema.d.ts":
            used |= set(re.findall(r'live\.on\("([\w.\-]+)"', path.read_text(encoding="utf-8")))
    assert used, "no live.on calls found"
    assert used <= typed, f"untyped events: {sorted(used - typed)}"


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
