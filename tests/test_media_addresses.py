"""Where the relay gathers its host candidates (``YUNBANG_MEDIA_ADDRESSES``), on which UDP
ports (``YUNBANG_MEDIA_PORTS``) and which address it tells clients (``YUNBANG_MEDIA_ANNOUNCE``).

aioice gathers on every address of the machine but loopback, on ephemeral ports; an operator
names the addresses instead (the test suite: ``127.0.0.1`` only), a port range their firewall
opens, and — behind 1:1 NAT — the public address clients reach the private one by."""

from __future__ import annotations

import re

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from server.config import Settings, SettingsError
from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from signaling.relay import ice
from signaling.tasks import Tasks
from tests.conftest import Platform
from tests.helpers import ticket_called
from tests.rtc_client import CallClient, NoiseVideo

CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", re.M)


async def _offer(network: ice.MediaNetwork) -> tuple[RTCPeerConnection, set[tuple[str, int]]]:
    """A connection gathering as ``network`` says (open: the caller closes it) and its host
    candidates (address, port)."""
    pc = ice.gather_on(ice.peer_connection(RTCConfiguration(), Tasks("test")), network)
    pc.addTransceiver(NoiseVideo(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, {(a, int(p)) for a, p in CANDIDATE.findall(pc.localDescription.sdp)}


async def _host_candidates(addresses: tuple[str, ...]) -> set[str]:
    pc, candidates = await _offer(ice.MediaNetwork(addresses))
    await pc.close()
    return {address for address, _ in candidates}


async def test_the_relay_gathers_only_on_the_addresses_it_is_given() -> None:
    assert await _host_candidates(("127.0.0.1",)) == {"127.0.0.1"}
    everywhere = await _host_candidates(())
    assert everywhere and "127.0.0.1" not in everywhere, "aioice's default: every address but loopback"


async def test_host_candidates_take_ports_of_the_range_until_it_is_used_up(caplog: pytest.LogCaptureFixture) -> None:
    """Four ports: four connections get one each, all different; a fifth gets no candidate and
    the log says which setting to look at; a port freed is taken again."""
    network = ice.MediaNetwork(("127.0.0.1",), ports=(41990, 41993))
    made = [await _offer(network) for _ in range(4)]
    ports = sorted(port for _, candidates in made for _, port in candidates)
    assert ports == [41990, 41991, 41992, 41993]
    fifth, none = await _offer(network)
    assert none == set()
    assert "YUNBANG_MEDIA_PORTS" in caplog.text and "41990-41993" in caplog.text
    await fifth.close()
    await made[2][0].close()
    again, candidates = await _offer(network)
    assert candidates == made[2][1], "the port freed is taken again"
    for pc in [again, *(pc for pc, _ in made)]:
        await pc.close()


async def test_behind_1_to_1_nat_clients_are_told_the_announced_address_and_reach_the_relay_by_it(
        platform: Platform) -> None:
    """The relay binds every address (0.0.0.0) on ports of its range and announces another one
    (here 127.0.0.1, which reaches the wildcard socket as a public address reaches a private one
    through 1:1 NAT); a call connects through it and frames flow both ways."""
    relay = platform.app[CALLS].relay
    relay.network = ice.MediaNetwork(("0.0.0.0",), announce="127.0.0.1", ports=(42000, 42099))
    ticket, worker_api, clerk_api = await ticket_called(platform, "公网群众")
    worker = await CallClient(platform.base, worker_api.token).connect()
    clerk = await CallClient(platform.base, clerk_api.token).connect()
    # The clients stand where the public address is reached from. On one machine the relay's
    # wildcard socket answers a client on the machine's own address (192.0.2.2) *from* that
    # address, not from the announced one (a NAT would rewrite it), and the client's check fails
    # with "source address mismatch" — a race the clients lost on a loaded machine. From
    # loopback, the answer comes from the announced address, as through 1:1 NAT.
    worker.network = clerk.network = ice.MediaNetwork(("127.0.0.1",))
    try:
        await worker.join(ticket["id"])
        await clerk.join(ticket["id"])
        answer = await worker.publish(size=(160, 120))
        assert {(a, 42000 <= p <= 42099) for a, p in CANDIDATE.findall(answer["sdp"]) for p in [int(p)]} == {
            ("127.0.0.1", True)}, answer["sdp"]
        await clerk.publish(size=(160, 120))
        await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 10, timeout=30)
        await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 10, timeout=30)
        assert clerk.subscribe_pc is not None
        offered = clerk.subscribe_pc.remoteDescription.sdp
        assert {a for a, _ in CANDIDATE.findall(offered)} == {"127.0.0.1"}
        # the relay's side of the pair is a socket bound to 0.0.0.0, in the range
        room = relay.rooms[room_id(ticket['id'])]
        for participant in room.participants.values():
            for pc in (participant.publish_pc, participant.subscribe_pc):
                assert pc is not None
                (transceiver, *_) = pc.getTransceivers()
                pair = transceiver.receiver.transport.transport._connection._nominated[1]
                host, port = pair.protocol.transport.get_extra_info("sockname")[:2]
                assert host == "0.0.0.0" and 42000 <= port <= 42099, (host, port)
    finally:
        await worker.close()
        await clerk.close()


def test_media_addresses_and_relay_roles_are_checked_at_start() -> None:
    env = {"YUNBANG_MEDIA_ADDRESSES": "127.0.0.1, ::1"}
    assert Settings.from_env(env).media_addresses == ("127.0.0.1", "::1")
    with pytest.raises(SettingsError, match="YUNBANG_MEDIA_ADDRESSES: 'eth0' is not an IP address"):
        Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "eth0"})
    nat = Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "0.0.0.0", "YUNBANG_MEDIA_ANNOUNCE": "203.0.113.7",
                             "YUNBANG_MEDIA_PORTS": "40000 - 40999"})
    assert (nat.media_addresses, nat.media_announce, nat.media_ports) == (("0.0.0.0",), "203.0.113.7", (40000, 40999))
    with pytest.raises(SettingsError, match="0.0.0.0 binds every address but is none a client can reach"):
        Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "0.0.0.0"})
    with pytest.raises(SettingsError, match="YUNBANG_MEDIA_ANNOUNCE needs YUNBANG_MEDIA_ADDRESSES"):
        Settings.from_env({"YUNBANG_MEDIA_ANNOUNCE": "203.0.113.7"})
    with pytest.raises(SettingsError, match="same IP version"):
        Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "::", "YUNBANG_MEDIA_ANNOUNCE": "203.0.113.7"})
    with pytest.raises(SettingsError, match="cannot reach 0.0.0.0"):
        Settings.from_env({"YUNBANG_MEDIA_ADDRESSES": "0.0.0.0", "YUNBANG_MEDIA_ANNOUNCE": "0.0.0.0"})
    for bad in ("40000", "40999-40000", "80-90", "40000-70000", "a-b"):
        with pytest.raises(SettingsError, match="YUNBANG_MEDIA_PORTS"):
            Settings.from_env({"YUNBANG_MEDIA_PORTS": bad})
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
