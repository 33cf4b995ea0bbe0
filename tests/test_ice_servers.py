"""ICE servers: STUN, and TURN with coturn use-auth-secret credentials that expire."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

import server.api.rtc  # noqa: F401  (registers GET /api/ice-servers in ROUTES before the app is built)
import signaling.turn
from server.api.rtc import IceServers
from server.config import Settings
from signaling.ids import participant_id
from signaling.turn import ice_servers, turn_credentials
from tests.conftest import Platform

SECRET = "test-turn-secret-0123456789"


def expected_credential(username: str) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_turn_rest_credentials_match_what_coturn_computes() -> None:
    username, credential, expiry = turn_credentials(SECRET, "u7", 600, now=1_700_000_000.5)
    assert username == "1700000600:u7" and expiry == 1_700_000_600
    assert credential == expected_credential(username)
    assert ice_servers(Settings(), "u1", time.time()) == [], "nothing configured: a LAN reaches the relay"


def test_turn_urls_without_a_secret_offer_no_turn_and_warn_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signaling.turn, "_warned_missing_secret", False)
    half = Settings(turn_urls=("turn:x:3478",))
    with caplog.at_level("WARNING", logger="yunbang.turn"):
        assert ice_servers(half, "u1", time.time()) == [], "no secret, no TURN"
        assert ice_servers(half, "u1", time.time()) == []
    assert len([r for r in caplog.records if "TURN_SECRET" in r.getMessage()]) == 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(
        stun_urls=("stun:turn.example.org:3478",),
        turn_urls=("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"),
        turn_secret=SECRET,
        ice_relay_roles=("worker",),
    )


async def test_logged_in_users_get_stun_and_short_lived_turn(platform: Platform) -> None:
    anonymous = await platform.anonymous().get("/api/ice-servers")
    assert anonymous.status == 401 and anonymous.code == "auth_required"
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    reply = await worker.get("/api/ice-servers")
    assert reply.status == 200
    stun, turn = reply.body["ice_servers"]
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    assert turn["urls"] == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"]
    assert turn["credentialType"] == "password" and turn["credential"] == expected_credential(turn["username"])
    expiry, label = turn["username"].split(":")
    assert label == participant_id(worker.user['id']) and "worker1" not in turn["username"]
    assert 0 < int(expiry) - time.time() <= reply.body["ttl_seconds"]
    assert IceServers.model_validate(reply.body).model_dump(exclude_none=True) == reply.body, "as OpenAPI says"
    other = (await clerk.get("/api/ice-servers")).body["ice_servers"][1]
    assert other["username"] != turn["username"]


async def test_relay_roles_get_the_relay_transport_policy(platform: Platform) -> None:
    """YUNBANG_ICE_RELAY_ROLES=worker: the worker's browser sends media only through TURN."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    assert (await worker.get("/api/ice-servers")).body["ice_transport_policy"] == "relay"
    assert (await clerk.get("/api/ice-servers")).body["ice_transport_policy"] == "all"
