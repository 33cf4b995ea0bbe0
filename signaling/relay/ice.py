"""ICE for the relay's peer connections: publishers that offer only mDNS candidates.

A browser that hides its addresses offers only mDNS host candidates (``<uuid>.local``):
Firefox whenever capture is not counted as real (its fake devices, no permission yet), Safari
when it hides addresses, Chromium outside a secure context. The relay, on a server, cannot
resolve those names. aioice 0.13 then drops each candidate after its one-second mDNS query, and
at the offer's ``a=end-of-candidates`` it prunes the component (no remote candidates) and
``connect()`` finds an empty check list and fails at once ("no candidate pairs") — before the
browser has even received the relay's answer. Yet the browser's own checks would reach the relay
a moment later, and aioice learns the browser's address from them as a **peer-reflexive**
candidate (``Connection.check_incoming``), answers with a triggered check and completes when the
browser (the controlling side) nominates the pair.

So on the relay's connections mDNS candidates are set aside without a query (a server is
rarely on the browser's link, and where it is, the browser's checks show the same address as a
peer-reflexive candidate; the answer goes out without waiting a second for a reply that does
not come), and end-of-candidates is held back while no remote candidate is known: aioice keeps
looking for new pairs (``_check_periodic`` goes on while candidates are still expected) and the
browser's checks make them. End-of-candidates is passed on once a remote candidate is known, or
after ``CHECK_WAIT_S`` without any, so a client whose packets never arrive still fails, as a
browser gives up its own checks. On subscribing connections (the relay offers) the browser's
checks usually arrive before its answer and aioice has pairs from them at once; the same rule
covers the other case.

Host addresses: aioice gathers a host candidate on every address of the machine but loopback.
``gather_on(pc, addresses)`` makes a connection gather on the given addresses only (the
operator's ``YUNBANG_MEDIA_ADDRESSES``; ``127.0.0.1`` in the production topology test, where
coturn relays to the relay over loopback), by handing aioice's ``get_component_candidates`` that
list.

Only connections made by ``peer_connection`` (and given to ``gather_on``) are changed; aiortc and
aioice are not patched.
This reaches into aiortc's private ``RTCPeerConnection.__createDtlsTransport`` and
``RTCIceTransport._connection`` and relies on aioice's trickle handling, pinned like
``passthrough.py``: ``check_aioice()`` runs at import.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence

from aioice.candidate import Candidate
from aioice.ice import Connection
from aioice.mdns import is_mdns_hostname
from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection
from aiortc import rtcpeerconnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport

from signaling.relay import dtls
from signaling.relay.passthrough import AiortcMismatch, check_aiortc

log = logging.getLogger(__name__)

#: How long a connection with no usable remote candidate waits for the peer's checks. Browsers
#: give up their own checks after about 30 s.
CHECK_WAIT_S = 30.0
_CREATE_DTLS = "_RTCPeerConnection__createDtlsTransport"

AddCandidate = Callable[[RTCIceCandidate | None], Awaitable[None]]


def peer_connection(configuration: RTCConfiguration | None) -> RTCPeerConnection:
    """The relay's ``RTCPeerConnection`` (``dtls.peer_connection``: RSA peers too) whose ICE
    waits for the peer's checks when its candidates cannot be used (mDNS-only offers)."""
    return wait_for_checks(dtls.peer_connection(configuration))


def wait_for_checks(pc: RTCPeerConnection) -> RTCPeerConnection:
    """Make every ICE transport ``pc`` creates from now on hold end-of-candidates while no remote
    candidate is known. Call before ``addTransceiver`` / ``setRemoteDescription``."""
    create: Callable[[], RTCDtlsTransport] = getattr(pc, _CREATE_DTLS)

    def create_waiting() -> RTCDtlsTransport:
        transport = create()
        _hold_end_of_candidates(transport.transport)
        return transport

    setattr(pc, _CREATE_DTLS, create_waiting)
    return pc


def gather_on(pc: RTCPeerConnection, addresses: Sequence[str]) -> RTCPeerConnection:
    """Make every ICE transport ``pc`` creates from now on gather host candidates on
    ``addresses`` only (every address but loopback, aioice's choice, when empty)."""
    if not addresses:
        return pc
    create: Callable[[], RTCDtlsTransport] = getattr(pc, _CREATE_DTLS)
    chosen = list(addresses)

    def create_gathering() -> RTCDtlsTransport:
        transport = create()
        _gather_on(transport.transport._connection, chosen)
        return transport

    setattr(pc, _CREATE_DTLS, create_gathering)
    return pc


def _hold_end_of_candidates(ice: RTCIceTransport) -> None:
    add: AddCandidate = ice.addRemoteCandidate
    connection: Connection = ice._connection
    held: list[asyncio.Task[None]] = []

    async def add_remote_candidate(candidate: RTCIceCandidate | None) -> None:
        if candidate is not None:
            if is_mdns_hostname(candidate.ip):
                return  # not asked of the network: the peer's checks show its address
            await add(candidate)
            return
        if held:
            return  # already waiting; _end_later passes it on
        if connection.remote_candidates:
            await add(None)
            return
        log.info("no usable remote candidate yet: waiting for the peer's checks")
        held.append(asyncio.ensure_future(_end_later(ice, add, connection)))

    ice.addRemoteCandidate = add_remote_candidate  # type: ignore[method-assign]


def _gather_on(connection: Connection, ours: list[str]) -> None:
    """Host candidates on ``addresses`` instead of every address aioice finds (none still means
    none: the relay transport policy asks for no host candidate)."""
    gather = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:
        return await gather(component=component, addresses=ours if addresses else [], timeout=timeout)

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


async def _end_later(ice: RTCIceTransport, add: AddCandidate, connection: Connection) -> None:
    """Pass end-of-candidates on once a remote candidate is known (a peer-reflexive one from the
    peer's checks) or ``CHECK_WAIT_S`` has passed; nothing once the transport is done."""
    changed = asyncio.Event()
    ice.on("statechange", changed.set)
    deadline = asyncio.get_running_loop().time() + CHECK_WAIT_S
    try:
        while ice.state in ("new", "checking") and not connection.remote_candidates:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        if ice.state in ("new", "checking"):
            await add(None)
    finally:
        ice.remove_listener("statechange", changed.set)


def check_aioice() -> None:
    """The parts of aiortc and aioice this module relies on are where it expects them."""
    check_aiortc()
    if not callable(getattr(RTCPeerConnection, _CREATE_DTLS, None)):
        raise AiortcMismatch("RTCPeerConnection.__createDtlsTransport is gone")
    if "self.__createDtlsTransport()" not in inspect.getsource(RTCPeerConnection):
        raise AiortcMismatch("RTCPeerConnection no longer makes its transports in __createDtlsTransport")
    if "iceTransport.addRemoteCandidate" not in inspect.getsource(rtcpeerconnection.add_remote_candidates):
        raise AiortcMismatch("aiortc no longer adds the offer's candidates through addRemoteCandidate")
    if list(inspect.signature(RTCIceTransport.addRemoteCandidate).parameters) != ["self", "candidate"]:
        raise AiortcMismatch("RTCIceTransport.addRemoteCandidate changed its signature")
    if "self._connection = gatherer._connection" not in inspect.getsource(RTCIceTransport.__init__):
        raise AiortcMismatch("RTCIceTransport no longer keeps its aioice Connection in _connection")
    if "_remote_candidates_expected()" not in inspect.getsource(Connection._check_periodic):
        raise AiortcMismatch("aioice's connect() no longer waits while candidates are expected")
    if 'type="prflx"' not in inspect.getsource(Connection.check_incoming):
        raise AiortcMismatch("aioice no longer learns peer-reflexive candidates from checks")
    if "self.get_component_candidates(component=component, addresses=addresses)" not in inspect.getsource(
            Connection.gather_candidates):
        raise AiortcMismatch("aioice no longer gathers host candidates through get_component_candidates")
    if not isinstance(getattr(Connection, "remote_candidates", None), property):
        raise AiortcMismatch("aioice's Connection.remote_candidates is gone")


check_aioice()
