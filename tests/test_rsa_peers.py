"""Peers whose DTLS certificate is RSA (GStreamer's webrtcbin, many OpenSSL-based kiosk stacks)
publish and subscribe through the relay, like browsers with their ECDSA certificates.

The relay answers a publisher with ``a=setup:active``: it is the DTLS client, and the publisher,
as the server, picks the cipher suite from the relay's list — one its own certificate can sign.
These aiortc clients stand in for such a stack: an RSA certificate and OpenSSL's usual cipher
list, the one GStreamer's DTLS element sets.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate, generate_certificate
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL

import tests.rtc_client
from server.keys import CALLS
from signaling.ids import participant_id, room_id
from signaling.relay import dtls
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import district_item, take, window_of
from tests.rtc_client import CallClient

OPENSSL_DEFAULT_CIPHERS = b"ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH"  # GStreamer 1.22's gstdtlsagent.c


class RsaCertificate(RTCCertificate):
    """An RSA 2048 certificate (what GStreamer generates) and OpenSSL's usual cipher list."""

    @classmethod
    def generate_rsa(cls) -> RsaCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key=key, cert=generate_certificate(key))  # type: ignore[arg-type]

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        ctx = super()._create_ssl_context(srtp_profiles)
        ctx.set_cipher_list(OPENSSL_DEFAULT_CIPHERS)
        return ctx


class RsaPeerConnection(RTCPeerConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._RTCPeerConnection__certificates[:] = [RsaCertificate.generate_rsa()]


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
async def rsa_clients(platform: Platform, monkeypatch: pytest.MonkeyPatch):
    """Call clients (tests/rtc_client.py) whose every peer connection has an RSA certificate."""
    monkeypatch.setattr(tests.rtc_client, "RTCPeerConnection", RsaPeerConnection)
    made: list[CallClient] = []

    async def make(api) -> CallClient:
        made.append(await CallClient(platform.base, api.token).connect())
        return made[-1]

    yield make
    for c in made:
        await c.close()


def _dtls_of(pc: RTCPeerConnection) -> Any:
    return pc.getTransceivers()[0].receiver.transport


def _cipher(pc: RTCPeerConnection) -> str:
    return _dtls_of(pc)._ssl.get_cipher_name()


def _dtls12_suites(certificate: RTCCertificate) -> list[str]:
    """The suites a context offers in DTLS 1.2 (OpenSSL lists its TLS 1.3 ones too)."""
    names = SSL.Connection(certificate._create_ssl_context(SRTP_PROFILES)).get_cipher_list()
    return [n for n in names if not n.startswith("TLS_")]


async def test_worker_and_clerk_with_rsa_certificates_see_each_other_through_the_relay(platform, rsa_clients) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "视频群众")
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    worker, clerk = await rsa_clients(worker_api), await rsa_clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    reply = await worker.publish()
    assert "a=setup:active" in reply["sdp"], "the relay is the DTLS client of a publisher"
    await clerk.publish()
    w, c = participant_id(worker_api.user['id']), participant_id(clerk_api.user['id'])
    await clerk.wait_frames(f"{w}:camera", 15)
    await worker.wait_frames(f"{c}:camera", 15)
    await clerk.wait_frames(f"{w}:microphone", 15)

    assert isinstance(worker.publish_pc._RTCPeerConnection__certificates[0]._key, rsa.RSAPrivateKey)
    room = platform.app[CALLS].relay.rooms[room_id(ticket['id'])]
    publisher_side = room.participants[w].publish_pc
    assert _dtls_of(publisher_side)._role == "client"
    assert _cipher(publisher_side).startswith("ECDHE-RSA-"), "the RSA publisher signed the key exchange"
    subscriber_side = room.participants[c].subscribe_pc
    assert _dtls_of(subscriber_side)._role == "server"
    assert _cipher(subscriber_side).startswith("ECDHE-ECDSA-"), "the relay's own certificate stays ECDSA"


def test_relay_certificates_stay_ecdsa_and_offer_forward_secret_rsa_suites() -> None:
    pc = dtls.peer_connection(None)
    certificate = pc._RTCPeerConnection__certificates[0]
    assert isinstance(certificate, dtls.RelayCertificate)
    assert certificate._key.curve.name == "secp256r1"
    assert datetime.datetime.now(datetime.UTC) < certificate.expires
    offered = _dtls12_suites(certificate)
    assert offered[0] == "ECDHE-ECDSA-AES128-GCM-SHA256", "browsers keep the suite they negotiate today"
    assert "ECDHE-RSA-AES128-GCM-SHA256" in offered
    assert all(name.startswith(("ECDHE-ECDSA-", "ECDHE-RSA-")) for name in offered), "ephemeral key exchange only"
    plain = RTCPeerConnection()._RTCPeerConnection__certificates[0]
    assert not any(n.startswith("ECDHE-RSA-") for n in _dtls12_suites(plain)), "aiortc itself is left as it is"
