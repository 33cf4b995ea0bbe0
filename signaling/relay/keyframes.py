"""Does this RTP payload start a keyframe? (VP8 per RFC 7741, H.264 per RFC 6184.)"""

from __future__ import annotations

from collections.abc import Callable


def vp8_keyframe_start(payload: bytes) -> bool:
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S (start of partition) and PID 0
        return False
    i = 1
    if first & 0x80:  # X: extension byte
        ext = payload[1]
        i = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K
            i += 1
    return len(payload) > i and not payload[i] & 0x01  # P bit 0 = keyframe


def h264_keyframe_start(payload: bytes) -> bool:
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24 and len(payload) > 3:  # STAP-A: the first aggregated unit
        return payload[3] & 0x1F in (5, 7)
    if nal == 28 and len(payload) > 1:  # FU-A: the first fragment of an IDR
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def detector(mime_type: str) -> Callable[[bytes], bool]:
    return h264_keyframe_start if mime_type.lower() == "video/h264" else vp8_keyframe_start
