"""Small edits to the SDP the relay hands to browsers (aiortc writes it; these are for the
browser on the other end)."""

from __future__ import annotations

import re

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
            params = dict(p.split("=", 1) if "=" in p else (p, "") for p in fmtp.group(2).split(";") if p)
            params.update(OPUS_RESILIENCE)
            line = f"a=fmtp:{fmtp.group(1)} " + ";".join(f"{k}={v}" if v else k for k, v in params.items())
        out.append(line)
        rtpmap = _RTPMAP.match(line)
        if rtpmap and rtpmap.group(1) not in has_fmtp:
            out.append(f"a=fmtp:{rtpmap.group(1)} " + ";".join(f"{k}={v}" for k, v in OPUS_RESILIENCE.items()))
    return "\r\n".join(out)
