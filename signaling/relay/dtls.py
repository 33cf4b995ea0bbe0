"""DTLS for the relay's peer connections: peers with RSA certificates too.

aiortc 1.16 offers only ECDHE-ECDSA cipher suites (``RTCCertificate._create_ssl_context``).
That is enough where the relay is the DTLS *server*: it signs with its own ECDSA key whatever
the peer's certificate. But the relay answers a publisher with ``a=setup:active``, so there it
is the DTLS *client*, and the publisher, as the server, must pick a suite its own certificate
can sign. A peer with an RSA certificate (GStreamer's ``webrtcbin``, many OpenSSL-based kiosk
and terminal stacks) finds none and the handshake fails with "no shared cipher".

The relay keeps its ECDSA certificate and its DTLS roles and adds the ECDHE-RSA suites to its
list (AEAD first, then CBC as aiortc's own list has them for ECDSA; ephemeral key exchange
only). The suite a browser negotiates does not change: its ECDSA certificate still picks the
first ECDSA suite. Answering ``a=setup:passive`` instead would also work, but it changes the
role for every client (RFC 5763 recommends ``active`` for the answerer: the handshake starts
without waiting for the offerer's answer to arrive) and would leave the relay unable to talk to
an RSA peer wherever the relay is the client.

Only the relay's connections get the wider list (``peer_connection``); aiortc itself is not
patched. This touches aiortc's private attributes, pinned like ``passthrough.py``:
``check_aiortc_dtls()`` runs at import.
"""

from __future__ import annotations

import inspect

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport, SRTPProtectionProfile
from OpenSSL import SSL

from signaling.relay.passthrough import AiortcMismatch, check_aiortc

RELAY_CIPHERS = b":".join([
    b"ECDHE-ECDSA-AES128-GCM-SHA256",
    b"ECDHE-ECDSA-CHACHA20-POLY1305",
    b"ECDHE-ECDSA-AES128-SHA",
    b"ECDHE-ECDSA-AES256-SHA",
    b"ECDHE-RSA-AES128-GCM-SHA256",
    b"ECDHE-RSA-AES256-GCM-SHA384",
    b"ECDHE-RSA-CHACHA20-POLY1305",
    b"ECDHE-RSA-AES128-SHA",
    b"ECDHE-RSA-AES256-SHA",
])
_CERTIFICATES = "_RTCPeerConnection__certificates"


class RelayCertificate(RTCCertificate):
    """aiortc's ECDSA certificate, with cipher suites for RSA peers as well."""

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        ctx = super()._create_ssl_context(srtp_profiles)
        ctx.set_cipher_list(RELAY_CIPHERS)
        return ctx


def peer_connection(configuration: RTCConfiguration | None) -> RTCPeerConnection:
    """An ``RTCPeerConnection`` for the relay: its certificate negotiates with RSA peers too.

    The certificate is swapped before any DTLS transport exists (they are made by
    ``addTransceiver`` and ``setRemoteDescription``, each taking the list's first certificate)."""
    pc = RTCPeerConnection(configuration)
    certificates: list[RTCCertificate] = getattr(pc, _CERTIFICATES)
    certificates[:] = [RelayCertificate(key=c._key, cert=c._cert) for c in certificates]
    return pc


def check_aiortc_dtls() -> None:
    """The parts of aiortc this module relies on are where it expects them."""
    check_aiortc()
    init = inspect.getsource(RTCPeerConnection.__init__)
    if "self.__certificates = [RTCCertificate.generateCertificate()]" not in init:
        raise AiortcMismatch("RTCPeerConnection no longer keeps its certificates in __certificates")
    if "RTCDtlsTransport(iceTransport, self.__certificates)" not in inspect.getsource(RTCPeerConnection):
        raise AiortcMismatch("RTCPeerConnection no longer hands __certificates to its DTLS transports")
    if "._create_ssl_context(" not in inspect.getsource(RTCDtlsTransport.start):
        raise AiortcMismatch("RTCDtlsTransport no longer builds its SSL context from the certificate")
    if list(inspect.signature(RTCCertificate._create_ssl_context).parameters) != ["self", "srtp_profiles"]:
        raise AiortcMismatch("RTCCertificate._create_ssl_context changed its signature")
    if list(inspect.signature(RTCCertificate.__init__).parameters) != ["self", "key", "cert"]:
        raise AiortcMismatch("RTCCertificate(key, cert) changed")
    SSL.Context(SSL.DTLS_METHOD).set_cipher_list(RELAY_CIPHERS)  # every suite is known to this OpenSSL


check_aiortc_dtls()
