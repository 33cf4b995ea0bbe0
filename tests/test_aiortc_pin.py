"""The relay reaches inside aiortc; an aiortc upgrade that moves those parts must fail here."""

from __future__ import annotations

import aiortc
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from signaling.relay import ice, passthrough
from signaling.relay.keyframes import h264_keyframe_start, vp8_keyframe_start


def test_installed_aiortc_is_the_one_the_passthrough_is_written_for() -> None:
    assert aiortc.__version__ == passthrough.AIORTC_VERSION
    passthrough.check_aiortc()
    with open(aiortc.__file__.replace("__init__.py", "rtcrtpreceiver.py"), encoding="utf-8") as f:
        receiver_source = f.read()
    for attribute in passthrough._RECEIVER_ATTRS:
        assert f"self.__{attribute}" in receiver_source, f"RTCRtpReceiver.__{attribute} moved"
    with open(aiortc.__file__.replace("__init__.py", "rtcrtpsender.py"), encoding="utf-8") as f:
        sender_source = f.read()
    for attribute in passthrough._SENDER_ATTRS:
        assert f"self.__{attribute}" in sender_source, f"RTCRtpSender.__{attribute} moved"
    assert callable(RTCRtpReceiver._handle_rtp_packet) and callable(RTCRtpSender._run_rtp)


def test_transceivers_still_keep_their_negotiated_codecs_where_the_relay_reads_them() -> None:
    """relay.py and probe.py read ``RTCRtpTransceiver._codecs`` (no public API carries the codecs
    negotiated for an m-line): an empty list until negotiation, then the accepted codecs."""
    transceiver = RTCRtpTransceiver("video", None, None)  # type: ignore[arg-type]
    assert transceiver._codecs == []


def test_installed_aioice_still_learns_peers_from_their_checks() -> None:
    """signaling/relay/ice.py (mDNS-only publishers) holds end-of-candidates on aiortc's ICE
    transports and counts on aioice's peer-reflexive candidates."""
    ice.check_aioice()


def test_keyframe_detection() -> None:
    # VP8: descriptor with S=1, PID=0, no extension; payload header P bit 0 = keyframe.
    assert vp8_keyframe_start(bytes([0x10, 0x00, 0x9D, 0x01, 0x2A]))
    assert not vp8_keyframe_start(bytes([0x10, 0x01, 0x00]))      # P=1: interframe
    assert not vp8_keyframe_start(bytes([0x00, 0x00, 0x9D]))      # not a partition start
    # With X, I (15-bit picture id): descriptor is 4 bytes.
    assert vp8_keyframe_start(bytes([0x90, 0x80, 0x81, 0x23, 0x00, 0x9D]))
    assert h264_keyframe_start(bytes([0x65, 0x88]))                # IDR slice
    assert h264_keyframe_start(bytes([0x78, 0x00, 0x10, 0x67]))    # STAP-A starting with SPS
    assert h264_keyframe_start(bytes([0x7C, 0x85]))                # FU-A start of an IDR
    assert not h264_keyframe_start(bytes([0x41, 0x9A]))            # non-IDR slice
