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

Host addresses (``MediaNetwork``): aioice gathers a host candidate on every address of the
machine but loopback, each on an ephemeral UDP port. ``gather_on(pc, network)`` makes a
connection gather on the operator's addresses only (``YUNBANG_MEDIA_ADDRESSES``; ``127.0.0.1``
in the test suite), on ports of a fixed range for firewalls (``YUNBANG_MEDIA_PORTS``), and
announce another address than the one it binds (``YUNBANG_MEDIA_ANNOUNCE``: a server behind
1:1 NAT — a cloud host with a private address and an elastic IP — binds its private address or
``0.0.0.0`` and tells clients the public one, as Janus' ``nat_1_1_mapping``, LiveKit's
``node_ip`` or mediasoup's ``announcedIp``). With a range or an announced address the host
candidates are made here, as aioice makes them (a ``StunProtocol`` per address, added to the
connection's protocols); aioice still adds its TURN candidates, if any.

Only connections made by ``peer_connection`` (and given to ``gather_on``) are changed; aiortc and
aioice are not patched.
This reaches into aiortc's private ``RTCPeerConnection.__createDtlsTransport`` and
``RTCIceTransport._connection`` and relies on aioice's trickle handling, pinned like
``passthrough.py``: ``check_aioice()`` runs at import.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aioice import turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol
from aioice.mdns import is_mdns_hostname
from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, rtcpeerconnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport

from signaling.relay import dtls
from signaling.relay.passthrough import AiortcMismatch, check_aiortc
from signaling.tasks import Tasks

log = logging.getLogger(__name__)

#: How long a connection with no usable remote candidate waits for the peer's checks. Browsers
#: give up their own checks after about 30 s.
CHECK_WAIT_S = 30.0
_CREATE_DTLS = "_RTCPeerConnection__createDtlsTransport"

AddCandidate = Callable[[RTCIceCandidate | None], Awaitable[None]]


@dataclass(frozen=True)
class MediaNetwork:
    """Where the relay's connections take their host candidates (docs/operations.md "Media
    addresses"): ``addresses`` to bind (empty: every address of the machine but loopback,
    aioice's choice), ``announce`` the address written in the candidates instead of the bound
    one (1:1 NAT; with exactly one bound address, which may be ``0.0.0.0``), ``ports`` the
    inclusive UDP port range to bind in (``None``: ephemeral ports)."""

    addresses: tuple[str, ...] = ()
    announce: str | None = None
    ports: tuple[int, int] | None = None

    @property
    def default(self) -> bool:
        return not self.addresses and self.announce is None and self.ports is None


def peer_connection(configuration: RTCConfiguration | None, tasks: Tasks) -> RTCPeerConnection:
    """The relay's ``RTCPeerConnection`` (``dtls.peer_connection``: RSA peers too) whose ICE
    waits for the peer's checks when its candidates cannot be used (mDNS-only offers); the
    wait runs in ``tasks``."""
    return wait_for_checks(dtls.peer_connection(configuration), tasks)


def wait_for_checks(pc: RTCPeerConnection, tasks: Tasks) -> RTCPeerConnection:
    """Make every ICE transport ``pc`` creates from now on hold end-of-candidates while no remote
    candidate is known. Call before ``addTransceiver`` / ``setRemoteDescription``."""
    create: Callable[[], RTCDtlsTransport] = getattr(pc, _CREATE_DTLS)

    def create_waiting() -> RTCDtlsTransport:
        transport = create()
        _hold_end_of_candidates(transport.transport, tasks)
        return transport

    setattr(pc, _CREATE_DTLS, create_waiting)
    return pc


def gather_on(pc: RTCPeerConnection, network: MediaNetwork) -> RTCPeerConnection:
    """Make every ICE transport ``pc`` creates from now on gather its host candidates as
    ``network`` says (aioice's own way when it says nothing)."""
    if network.default:
        return pc
    create: Callable[[], RTCDtlsTransport] = getattr(pc, _CREATE_DTLS)

    def create_gathering() -> RTCDtlsTransport:
        transport = create()
        _gather_on(transport.transport._connection, network)
        return transport

    setattr(pc, _CREATE_DTLS, create_gathering)
    return pc


def _hold_end_of_candidates(ice: RTCIceTransport, tasks: Tasks) -> None:
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
        held.append(tasks.spawn(_end_later(ice, add, connection), name="end of candidates"))

    ice.addRemoteCandidate = add_remote_candidate  # type: ignore[method-assign]  # aiortc has no hook for it


def _gather_on(connection: Connection, network: MediaNetwork) -> None:
    """Host candidates as ``network`` says instead of aioice's (none still means none: the
    relay transport policy asks for no host candidate)."""
    gather = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:
        ours = (list(network.addresses) or addresses) if addresses else []
        if network.ports is None and network.announce is None:
            return await gather(component=component, addresses=ours, timeout=timeout)
        hosts = await _host_candidates(connection, component, ours, network)
        return hosts + await gather(component=component, addresses=[], timeout=timeout)

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]  # aioice has no hook for it


async def _host_candidates(connection: Connection, component: int, addresses: list[str],
                           network: MediaNetwork) -> list[Candidate]:
    """One host candidate per address, bound in ``network.ports`` and written with
    ``network.announce`` — what aioice's ``get_component_candidates`` does for its host
    candidates, on chosen ports."""
    loop = asyncio.get_running_loop()
    candidates = []
    for address in addresses:
        try:
            transport, protocol = await _bind(loop, connection, address, network.ports)
        except OSError as exc:
            log.error("no host candidate on %s: %s (YUNBANG_MEDIA_ADDRESSES / YUNBANG_MEDIA_PORTS)", address, exc)
            continue
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
        bound = transport.get_extra_info("sockname")
        host = network.announce or bound[0]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host), component=component, transport="udp",
            priority=candidate_priority(component, "host"), host=host, port=bound[1], type="host")
        connection._protocols.append(protocol)
        candidates.append(protocol.local_candidate)
    return candidates


async def _bind(loop: asyncio.AbstractEventLoop, connection: Connection, address: str,
                ports: tuple[int, int] | None) -> tuple[asyncio.DatagramTransport, StunProtocol]:
    """A UDP endpoint on ``address``: on an ephemeral port, or on the first free port of the
    range from a random start (so two connections made at once rarely try the same one)."""
    if ports is None:
        return await loop.create_datagram_endpoint(lambda: StunProtocol(connection), local_addr=(address, 0))
    first, last = ports
    count = last - first + 1
    start = random.randrange(count)
    for i in range(count):
        port = first + (start + i) % count
        try:
            return await loop.create_datagram_endpoint(lambda: StunProtocol(connection), local_addr=(address, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"every UDP port of {first}-{last} is in use")


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
    made_here = inspect.getsource(Connection.get_component_candidates)
    for part in ("lambda: StunProtocol(self)", "protocol.local_candidate = Candidate(",
                 "self._protocols += host_protocols", "turn.UDP_SOCKET_BUFFER_SIZE"):
        if part not in made_here:
            raise AiortcMismatch(f"aioice no longer makes host candidates as _host_candidates does ({part})")


check_aioice()
