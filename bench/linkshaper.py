"""Delay, random loss and blackouts for the packets of one network namespace, from user space.

This kernel has ``tbf`` (rate) but no ``sch_netem`` (delay, loss), so ``bench/weak_link.py`` sends
the namespace's packets through NFQUEUE (iptables' ``NFQUEUE`` target: queue 1 for what leaves the
namespace, queue 2 for what arrives) to this program, run inside the namespace. It speaks the
netfilter netlink protocol with Python's ``socket`` module (no library): every queued packet's
verdict is held for that direction's one-way delay and is ``NF_DROP`` with the loss probability,
or for every packet while the link is blacked out. Dropping here, not with an iptables DROP, keeps
the sender from seeing EPERM, as on a real link.

Commands arrive on standard input, one JSON object a line, and replace the settings:
``{"up": {"delay_ms": 100, "loss": 0.03}, "down": {"delay_ms": 100, "loss": 0.03}, "blackout": false}``.
It prints ``ready`` once both queues are bound, and counts of what it passed and dropped on exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import sys
from dataclasses import dataclass, field

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR, NLMSG_DONE = 2, 3
SO_RCVBUFFORCE = 33
UPLINK, DOWNLINK = 1, 2  # queue numbers


def attribute(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attributes
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def config(queue: int, attributes: bytes, seq: int) -> bytes:
    return message(NFQNL_MSG_CONFIG, queue, attributes, NLM_F_REQUEST | NLM_F_ACK, seq)


def bind(queue: int, seq: int) -> list[bytes]:
    return [
        config(queue, attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)), seq),
        config(queue, attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)), seq + 1),
        config(queue, attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 20000)), seq + 2),
    ]


def verdict(queue: int, packet_id: int, accept: bool) -> bytes:
    return message(NFQNL_MSG_VERDICT, queue,
                   attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT if accept else NF_DROP, packet_id)))


def parse(data: bytes) -> list[tuple[int, int, int]]:
    """(netlink type, queue number, packet id or error code) of each message in a datagram."""
    out = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        if kind == NLMSG_ERROR:
            out.append((kind, 0, struct.unpack_from("=i", data, offset + 16)[0]))
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            queue = socket.ntohs(struct.unpack_from("=H", data, offset + 18)[0])
            at = offset + 20
            while at + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, at)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFQA_PACKET_HDR:
                    out.append((kind, queue, struct.unpack_from("!I", data, at + 4)[0]))
                    break
                at += (alen + 3) & ~3
        offset += (length + 3) & ~3
    return out


@dataclass
class Direction:
    delay_ms: float = 0.0
    loss: float = 0.0
    passed: int = 0
    dropped: int = 0


@dataclass
class Shaper:
    directions: dict[int, Direction] = field(default_factory=lambda: {UPLINK: Direction(), DOWNLINK: Direction()})
    blackout: bool = False

    def apply(self, command: dict[str, object]) -> None:
        for name, queue in (("up", UPLINK), ("down", DOWNLINK)):
            setting = command.get(name)
            if isinstance(setting, dict):
                self.directions[queue].delay_ms = float(setting.get("delay_ms", 0))
                self.directions[queue].loss = float(setting.get("loss", 0))
        if "blackout" in command:
            self.blackout = bool(command["blackout"])


async def serve() -> None:
    shaper = Shaper()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    seq = 1
    for queue in (UPLINK, DOWNLINK):
        for request in bind(queue, seq):
            sock.send(request)
            for kind, _queue, code in parse(sock.recv(65536)):
                if kind == NLMSG_ERROR and code != 0:
                    raise SystemExit(f"NFQUEUE {queue}: netlink error {os.strerror(-code)}")
            seq += 1
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    def send_verdict(queue: int, packet_id: int, accept: bool) -> None:
        try:
            sock.send(verdict(queue, packet_id, accept))
        except OSError:
            pass  # the packet's queue entry is gone (namespace going away)

    def readable() -> None:
        while True:
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                return
            except OSError as exc:  # ENOBUFS: the kernel dropped queued packets' messages
                print(f"linkshaper: {exc}", file=sys.stderr, flush=True)
                continue
            for kind, queue, packet_id in parse(data):
                if kind == NLMSG_ERROR:
                    continue
                direction = shaper.directions.get(queue)
                if direction is None:
                    send_verdict(queue, packet_id, True)
                    continue
                accept = not shaper.blackout and random.random() >= direction.loss
                if accept:
                    direction.passed += 1
                else:
                    direction.dropped += 1
                if direction.delay_ms > 0:
                    loop.call_later(direction.delay_ms / 1000, send_verdict, queue, packet_id, accept)
                else:
                    send_verdict(queue, packet_id, accept)

    loop.add_reader(sock.fileno(), readable)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := await reader.readline():
        if line.strip():
            shaper.apply(json.loads(line))
            print("ok", flush=True)
    loop.remove_reader(sock.fileno())
    for queue in (UPLINK, DOWNLINK):
        try:
            sock.send(config(queue, attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_UNBIND, 0,
                                                                         socket.AF_INET)), seq))
        except OSError:
            pass
    sock.close()
    counts = {name: {"passed": shaper.directions[q].passed, "dropped": shaper.directions[q].dropped}
              for name, q in (("up", UPLINK), ("down", DOWNLINK))}
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
