"""Small edits to the SDP the relay hands to browsers (aiortc writes it; these are for the
browser on the other end)."""

from __future__ import annotations

import re
from dataclasses import dataclass

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"

OPUS_RESILIENCE = {"useinbandfec": "1", "usedtx": "1", "minptime": "10"}
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/\d+)?$", re.IGNORECASE)


def opus_resilient(sdp: str) -> str:
    """Ask for Opus in-band FEC (a lost packet's sound rebuilt from the next one) and DTX
    (silence costs next to nothing): when a village link cannot carry everything, audio is
    what keeps the call going. Chrome and Firefox send both once the other side's fmtp says so."""
    lines = sdp.split("\r\n")
    opus = {m.group(1) for line in lines if (m := _RTPMAP.match(line))}
    if not opus:
        return sdp
    has_fmtp = {m.group(1) for line in lines if (m := re.match(r"^a=fmtp:(\d+) ", line))}
    out: list[str] = []
    for line in lines:
        fmtp = re.match(r"^a=fmtp:(\d+) (.*)$", line)
        if fmtp and fmtp.group(1) in opus:
            params = dict(p.split("=", 1) if "=" in p else [p, ""] for p in fmtp.group(2).split(";") if p)
            params.update(OPUS_RESILIENCE)
            line = f"a=fmtp:{fmtp.group(1)} " + ";".join(f"{k}={v}" if v else k for k, v in params.items())
        out.append(line)
        rtpmap = _RTPMAP.match(line)
        if rtpmap and rtpmap.group(1) not in has_fmtp:
            out.append(f"a=fmtp:{rtpmap.group(1)} " + ";".join(f"{k}={v}" for k, v in OPUS_RESILIENCE.items()))
    return "\r\n".join(out)


@dataclass(frozen=True)
class Simulcast:
    """A video m-section a browser publishes in layers: its RIDs, lowest layer first (the order
    of the offer's ``a=simulcast:send``, which follows the client's ``sendEncodings``), and the
    ids of the RID header extensions it offered."""

    mid: str
    rids: tuple[str, ...]
    extensions: dict[str, int]


_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


def simulcast_offers(sdp: str) -> dict[str, Simulcast]:
    """The m-sections of a publisher's offer that send simulcast, by mid. A section without
    ``a=simulcast:send`` (or with one layer) is an ordinary single stream."""
    found: dict[str, Simulcast] = {}
    for section in sdp.split("\r\nm=")[1:]:
        lines = section.split("\r\n")
        mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
        send = next((line[len("a=simulcast:send "):] for line in lines if line.startswith("a=simulcast:send ")), None)
        if mid is None or send is None:
            continue
        # "q;h;f", a paused layer "~h", alternatives "h,h2" (the first is taken)
        rids = tuple(alt.split(",")[0].lstrip("~") for alt in send.split(" ")[0].split(";") if alt)
        declared = {line.split()[0][6:] for line in lines if line.startswith("a=rid:") and line.split()[1:2] == ["send"]}
        rids = tuple(r for r in rids if r in declared)
        extensions = {m.group(2): int(m.group(1)) for line in lines if (m := _EXTMAP.match(line))}
        if len(rids) > 1 and RID_URI in extensions:
            found[mid] = Simulcast(mid, rids, {u: i for u, i in extensions.items() if u in (RID_URI, REPAIRED_RID_URI)})
    return found


def accept_layers(answer: str, offers: dict[str, Simulcast]) -> str:
    """Add ``a=rid:… recv`` and ``a=simulcast:recv …`` to the answer's sections that the offer
    sent in layers: without them a browser sends only its first layer."""
    if not offers:
        return answer
    out: list[str] = []
    lines = answer.split("\r\n")
    for line in lines:
        out.append(line)
        if line.startswith("a=mid:") and line[6:] in offers:
            layers = offers[line[6:]]
            # after the section's last attribute line keeps order readable; browsers accept either
            out.extend(f"a=rid:{rid} recv" for rid in layers.rids)
            out.append("a=simulcast:recv " + ";".join(layers.rids))
    return "\r\n".join(out)
