"""What the call tests check inside aiortc to prove the relay only forwards: no decoder fed, no
encoder made, packets through ``fast_receive``. The attribute names are those
``signaling/relay/passthrough.py`` pins (``check_aiortc``)."""

from __future__ import annotations

from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from signaling.relay.passthrough import _R, _S


def never_decoded(receiver: RTCRtpReceiver) -> bool:
    """True while nothing was queued for this receiver's decoder."""
    queue = getattr(receiver, _R + "decoder_queue")
    return bool(queue.qsize() == 0)


def fast_receive_active(receiver: RTCRtpReceiver) -> bool:
    """True once this receiver's packets come through ``fast_receive``."""
    return bool(getattr(receiver.transport.transport._connection, "_yunbang_fast", False))


def never_encoded(sender: RTCRtpSender) -> bool:
    return getattr(sender, _S + "encoder") is None
