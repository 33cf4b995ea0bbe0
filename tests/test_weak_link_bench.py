"""The pure parts of bench/weak_link.py and bench/linkshaper.py: figures from getStats samples, the
outage's recovery moment, the netfilter netlink messages. (The bench itself runs browsers in a
network namespace as root: `make bench`, not `make test`.)"""

from __future__ import annotations

import importlib.util
import socket
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name: str) -> ModuleType:
    sys.path.append(str(BENCH))  # last, so that bench/queue.py never hides the standard library's
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


weak_link = load("weak_link")
linkshaper = load("linkshaper")


def sample(pcs: list[dict[str, Any]], phase: str = "connected") -> dict[str, Any]:
    return {"phase": phase, "pcs": pcs}


def video_in(row_id: str, frames: int, freezes: float = 0.0, lost: int = 0, received: int = 0,
             height: int = 480) -> dict[str, Any]:
    return {"type": "inbound-rtp", "id": row_id, "kind": "video", "framesDecoded": frames,
            "totalFreezesDuration": freezes, "freezeCount": 1 if freezes else 0, "packetsLost": lost,
            "packetsReceived": received, "bytesReceived": received * 1000, "frameWidth": height * 4 // 3,
            "frameHeight": height}


def audio_in(concealed: int, total: int) -> dict[str, Any]:
    return {"type": "inbound-rtp", "id": "A", "kind": "audio", "concealedSamples": concealed,
            "totalSamplesReceived": total}


def video_out(sent_bytes: int) -> dict[str, Any]:
    return {"type": "outbound-rtp", "id": "O", "kind": "video", "bytesSent": sent_bytes, "packetsSent": sent_bytes // 1000,
            "targetBitrate": 300_000, "qualityLimitationReason": "bandwidth"}


def test_a_replaced_connection_counts_from_zero_and_a_freeze_still_going_on_counts():
    # second 0→1: 20 frames on connection 1; 1→2: connection 1 gone, connection 2 decoded 10;
    # 2→3 and 3→4: nothing decoded (a freeze Chromium has not counted yet)
    receiver = [
        sample([{"id": 1, "ice": "connected", "rows": [video_in("V", 100, received=1000), audio_in(0, 48000)]}]),
        sample([{"id": 1, "ice": "connected", "rows": [video_in("V", 120, received=1100), audio_in(0, 96000)]}]),
        sample([{"id": 2, "ice": "connected", "rows": [video_in("V", 10, lost=10, received=90, height=360),
                                                       audio_in(4800, 48000)]}]),
        sample([{"id": 2, "ice": "connected", "rows": [video_in("V", 10, lost=10, received=90, height=360),
                                                       audio_in(9600, 96000)]}]),
        sample([{"id": 2, "ice": "checking", "rows": [video_in("V", 10, lost=10, received=90, height=360),
                                                      audio_in(14400, 144000)]}], phase="reconnecting"),
    ]
    sender = [sample([{"id": 7, "ice": "connected", "rows": [video_out(n * 50_000)]}]) for n in range(5)]
    figures = weak_link.direction_figures(receiver, sender, [0.0, 1.0, 2.0, 3.0, 4.0], False, 600)
    assert figures["fps"] == 30 / 4
    assert figures["no_frame_s"] == 2.0
    assert figures["frozen_s_per_min"] == 2.0 * 60 / 4  # the trailing 2 s, scaled to a minute
    assert figures["loss_pct"] == round(100 * 10 / (10 + 190), 1)
    assert figures["audio_concealed_pct"] == round(100 * 14400 / (48000 + 144000), 1)
    assert figures["sent_kbps"] == 400 and figures["link_kbps"] == 600
    assert figures["resolution"] == "480x360" and figures["min_height"] == 360
    assert figures["connected_pct"] == 75 and figures["phase"] == "reconnecting" and figures["ice"] == "checking"
    assert figures["limited_by"] == "bandwidth" and figures["target_kbps"] == 300


def test_no_audio_at_all_is_all_concealed_and_the_worse_direction_is_reported():
    silent = [sample([]), sample([])]
    figures = weak_link.direction_figures(silent, silent, [0.0, 1.0], True, None)
    assert figures["fps"] == 0 and figures["audio_concealed_pct"] == 100.0 and figures["frozen_s_per_min"] == 60
    worse = weak_link.worse_of({"fps": 18.0, "frozen_s_per_min": 0.4, "recovery_s": 0.2},
                               {"fps": 12.5, "frozen_s_per_min": 3.0, "recovery_s": 2.1})
    assert worse == {"fps": 12.5, "frozen_s_per_min": 3.0, "recovery_s": 2.1}
    assert weak_link.worse_of({"loss_pct": None}, {"loss_pct": 2.0}) == {"loss_pct": None}


def test_recovery_is_the_first_frame_of_a_run_that_goes_on():
    assert weak_link.recovered_at([(0.1, 1), (0.2, 12)]) == (0.1, True)
    # one stale frame, then nothing for more than a second, then decoding again
    polls = [(0.05, 1), (0.5, 1), (1.2, 1), (2.0, 2), (2.4, 13)]
    assert weak_link.recovered_at(polls) == (2.0, True)
    assert weak_link.recovered_at(polls[:4]) is None  # cannot tell yet
    assert weak_link.recovered_at([(0.1, 0), (0.2, 0)]) is None


def test_netlink_messages_have_the_kernel_layout():
    verdict = linkshaper.verdict(2, 0x01020304, accept=False)
    length, kind, flags = struct.unpack_from("=IHH", verdict)
    assert length == len(verdict) == 16 + 4 + 12
    assert kind == (3 << 8) | 1 and flags == 1  # NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT, NLM_F_REQUEST
    assert struct.unpack_from("!H", verdict, 18)[0] == 2  # queue number, big-endian res_id
    assert struct.unpack_from("=HH", verdict, 20) == (12, 2)  # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", verdict, 24) == (0, 0x01020304)  # NF_DROP, packet id
    # a packet message as the kernel sends it: nfgenmsg, then NFQA_PACKET_HDR (id, hw protocol, hook)
    header = struct.pack("!IHB", 77, 0x0800, 3) + b"\0"
    body = struct.pack("=BBH", socket.AF_INET, 0, socket.htons(1)) + linkshaper.attribute(1, header)
    packet = struct.pack("=IHHII", 16 + len(body), 3 << 8, 0, 0, 0) + body
    error = struct.pack("=IHHIIi", 20, 2, 0, 0, 0, -1)
    assert linkshaper.parse(packet + error) == [((3 << 8), 1, 77), (2, 0, -1)]


def test_the_shaper_takes_commands_for_each_direction():
    shaper = linkshaper.Shaper()
    shaper.apply({"up": {"delay_ms": 100, "loss": 0.03}, "down": {"delay_ms": 150}, "blackout": True})
    assert (shaper.directions[1].delay_ms, shaper.directions[1].loss) == (100, 0.03)
    assert (shaper.directions[2].delay_ms, shaper.directions[2].loss) == (150, 0)
    assert shaper.blackout
    shaper.apply({"blackout": False})
    assert not shaper.blackout and shaper.directions[1].delay_ms == 100
