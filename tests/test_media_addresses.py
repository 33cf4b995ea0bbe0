"""Where the relay gathers its host candidates (``YUNBANG_MEDIA_ADDRESSES``).

aioice gathers on every address of the machine but loopback; an operator names the addresses
instead (the production topology test: ``127.0.0.1`` only, where coturn relays to the relay)."""

from __future__ import annotations

import re

import pytest
from aiortc import RTCConfiguration

from server.config import Settings, SettingsError
from signaling.relay import ice
from tests.rtc_client import NoiseVideo

CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", re.M)


async def _host_candidates(addresses: tuple[str, ...]) -> set[str]:
    pc = ice.gather_on(ice.peer_connection(RTCConfiguration()), addresses)
    try:
        pc.addTransceiver(NoiseVideo(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return set(CANDIDATE.findall(pc.localDescription.sdp))
    finally:
        await pc.close()


async def test_the_relay_gathers_only_on_the_addresses_it_is_given() -> None:
    assert await _host_candidates(("127.0.0.1",)) == {"127.0.0.1"}
    everywhere = await _host_candidates(())
    assert everywhere and "127.0.0.1" not in everywhere, "aioice's default: every address but loopback"


def test_media_addresses_and_relay_roles_are_checked_at_start() -> None:
    env = {"YUNBANG_MEDIA_ADDRESSES": "127.0.0.1, ::1"}
    assert Settings.from_env(env).media_addresses == ("127.0.0.1", "::1")
    with pytest.raises(SettingsError, match="YUNBANG_MEDIA_ADDRESSES: 'eth0' is not an IP address"):
        Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "eth0"})
    turn = {"YUNBANG_TURN_URLS": "turn:turn.example.org:3478", "YUNBANG_TURN_SECRET": "s" * 32}
    assert Settings.from_env({**turn, "YUNBANG_ICE_RELAY_ROLES": "worker"}).ice_relay_roles == ("worker",)
    assert Settings.from_env({**turn, "YUNBANG_ICE_RELAY_ROLES": "all"}).ice_relay_roles == ("worker", "clerk", "expert")
    with pytest.raises(SettingsError, match="needs TURN"):
        Settings.from_env({"YUNBANG_ICE_RELAY_ROLES": "worker"})
    with pytest.raises(SettingsError, match="supervisor not one of"):
        Settings.from_env({**turn, "YUNBANG_ICE_RELAY_ROLES": "supervisor"})


def test_a_bucket_cannot_take_a_path_of_the_app() -> None:
    with pytest.raises(SettingsError, match="/api/"):
        Settings.from_env({"YUNBANG_S3_BUCKET": "api"})
    with pytest.raises(SettingsError, match="lower-case"):
        Settings.from_env({"YUNBANG_S3_BUCKET": "Yun_Bang"})
    assert Settings.from_env({"YUNBANG_S3_BUCKET": "yunbang-docs"}).s3_bucket == "yunbang-docs"
