#!/usr/bin/python3
"""A call client on another WebRTC stack: GStreamer's webrtcbin, written from docs/protocol.md.

It runs in Debian's system Python (``/usr/bin/python3``: python3-gi, python3-gst-1.0,
python3-socketio), not in the project's virtualenv, and speaks socket.io itself; webrtcbin does
all the media: a publishing webrtcbin (videotestsrc → vp8enc → rtpvp8pay, audiotestsrc → opusenc
→ rtpopuspay) and a subscribing one whose decoded frames are counted at a fakesink.

Driven over stdin/stdout, one JSON object a line: a command ``{"cmd": "join"|"publish"|
"resubscribe"|"leave"|"status"|"quit"}`` gets one reply ``{"re": cmd, ...}``.

    /usr/bin/python3 tests/gst_client.py --base http://127.0.0.1:8080 --token … --ticket 17
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import defaultdict
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
import socketio  # Debian's python3-socketio
from gi.repository import GLib, Gst, GstSdp, GstWebRTC

PUBLISHER = """
webrtcbin name=pc bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert
  ! queue ! vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=400000 ! rtpvp8pay pt=96
  ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,rtcp-fb-nack-pli=true ! pc.
audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue ! opusenc
  ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! pc.
"""
DEPAYLOAD = {"VP8": "rtpvp8depay ! vp8dec", "OPUS": "rtpopusdepay ! opusdec"}
SOURCE_OF_KIND = {"video": "camera", "audio": "microphone"}


def out(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def ask(element: Any, signal: str, *args: Any, field: str | None = None) -> str | None:
    """Emit a promise-taking action signal and wait; ``field``: the SDP text of the description
    it created. The reply belongs to the promise and is read while the promise lives (with these
    bindings a description taken out of it reads as NULL once the promise is gone)."""
    promise = Gst.Promise.new()
    element.emit(signal, *args, promise)
    promise.wait()
    reply = promise.get_reply()
    if reply is not None and reply.has_field("error"):
        raise RuntimeError(f"{signal}: {reply.get_value('error')}")
    return reply.get_value(field).sdp.as_text() if field and reply is not None else None


def description(kind: GstWebRTC.WebRTCSDPType, sdp: str) -> GstWebRTC.WebRTCSessionDescription:
    ok, message = GstSdp.SDPMessage.new_from_text(sdp)
    assert ok == GstSdp.SDPResult.OK, "unreadable SDP"
    return GstWebRTC.WebRTCSessionDescription.new(kind, message)


def ice_ufrag(sdp: str) -> str | None:
    found = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.MULTILINE)
    return found.group(1) if found else None


class Connection:
    """One webrtcbin in its own pipeline. Its ICE candidates are held until the description they
    belong to has been acknowledged by the server (docs/protocol.md), then trickled."""

    def __init__(self, client: Client, which: str, launch: str) -> None:
        self.client, self.which = client, which
        made = Gst.parse_launch(launch)
        if isinstance(made, Gst.Pipeline):
            self.pipeline = made
        else:  # one element alone comes back as itself
            self.pipeline = Gst.Pipeline.new(which)
            self.pipeline.add(made)
        self.pc = self.pipeline.get_by_name("pc")
        self.acked = False
        self.held: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.negotiation_needed = threading.Event()
        self.pc.connect("on-ice-candidate", self._on_candidate)
        self.pc.connect("on-negotiation-needed", lambda *_: self.negotiation_needed.set())
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)

    def _on_error(self, _bus: Any, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        self.client.errors.append(f"{self.which}: {error.message} ({debug})")

    def _on_candidate(self, _pc: Any, mline: int, candidate: str) -> None:
        entry = {"candidate": candidate, "sdpMLineIndex": mline}
        with self.lock:  # in order: none overtakes the held ones
            if self.acked:
                self.client.send_candidate(self.which, entry)
            else:
                self.held.append(entry)

    def acknowledged(self) -> None:
        with self.lock:
            self.acked = True
            for entry in self.held:
                self.client.send_candidate(self.which, entry)
            self.held = []

    def transceivers(self) -> list[Any]:
        found, index = [], 0  # "get-transceivers" returns a GArray the bindings cannot iterate
        while (transceiver := self.pc.emit("get-transceiver", index)) is not None:
            found.append(transceiver)
            index += 1
        return found

    def close(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)
        self.pipeline.get_bus().remove_signal_watch()


class Client:
    def __init__(self, base: str, token: str, ticket_id: int) -> None:
        self.base, self.token, self.ticket_id = base, token, ticket_id
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("subscribe_offer", self._on_offer)
        self.publisher: Connection | None = None
        self.subscriber: Connection | None = None
        self.offers: list[dict[str, Any]] = []
        self.frames: dict[str, int] = defaultdict(int)  # subscriber connection number:mid -> decoded
        self.mids: dict[str, dict[str, Any]] = {}        # mid -> the offer's track entry
        self.subscribers_made = 0
        self.errors: list[str] = []
        self._offer_lock = threading.Lock()

    def connect(self) -> None:
        self.sio.connect(self.base, auth={"token": self.token}, transports=["websocket"],
                         socketio_path="socket.io", wait_timeout=10)

    def request(self, event: str, **payload: Any) -> dict[str, Any]:
        reply = self.sio.call(event, {"ticket_id": self.ticket_id, **payload}, timeout=20)
        if isinstance(reply, dict) and "error" in reply:
            self.errors.append(f"{event}: {reply['error']['code']}")
        return reply

    def send_candidate(self, which: str, entry: dict[str, Any]) -> None:
        self.request("ice_candidate", pc=which, candidate=entry)

    # --- publishing ---------------------------------------------------------------------
    def publish(self) -> dict[str, Any]:
        if self.publisher is not None:
            self.publisher.close()
        conn = self.publisher = Connection(self, "publish", PUBLISHER)
        for transceiver in conn.transceivers():
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        conn.transceivers()[0].set_property("do-nack", True)  # video (linked first): RTX for the relay's NACKs
        conn.pipeline.set_state(Gst.State.PLAYING)
        conn.negotiation_needed.wait(10)
        sdp = ask(conn.pc, "create-offer", None, field="offer")
        ask(conn.pc, "set-local-description", description(GstWebRTC.WebRTCSDPType.OFFER, sdp))
        sources, kind = {}, None
        for line in sdp.splitlines():
            if line.startswith("m="):
                kind = line[2:].split()[0]
            elif line.startswith("a=mid:") and kind in SOURCE_OF_KIND:
                sources[line[6:].strip()] = SOURCE_OF_KIND[kind]
        reply = self.request("publish", type="offer", sdp=sdp, sources=sources)
        if "sdp" not in reply:
            return {"ok": False, "reply": reply}
        ask(conn.pc, "set-remote-description", description(GstWebRTC.WebRTCSDPType.ANSWER, reply["sdp"]))
        conn.acknowledged()
        setup = re.search(r"^a=setup:(\w+)", reply["sdp"], re.MULTILINE)
        return {"ok": True, "offer_setup": re.search(r"^a=setup:(\w+)", sdp, re.MULTILINE).group(1),
                "answer_setup": setup.group(1) if setup else None, "sources": sources}

    # --- subscribing --------------------------------------------------------------------
    def _on_offer(self, data: dict[str, Any]) -> None:
        with self._offer_lock:
            try:
                self._answer(data)
            except Exception as exc:  # reported through status, not lost in a socket.io thread
                self.errors.append(f"subscribe_offer: {exc!r}")

    def _answer(self, data: dict[str, Any]) -> None:
        ufrag = ice_ufrag(data["sdp"])
        previous = self.offers[-1]["ufrag"] if self.offers else None
        new = self.subscriber is None or ufrag != previous
        self.offers.append({"ufrag": ufrag, "new_connection": new, "tracks": data["tracks"]})
        if new:  # new ICE credentials: the relay made a new connection, so do we
            if self.subscriber is not None:
                self.subscriber.close()
            self.subscribers_made += 1
            conn = self.subscriber = Connection(self, "subscribe", "webrtcbin name=pc bundle-policy=max-bundle")
            number = self.subscribers_made
            conn.pc.connect("pad-added", lambda _pc, pad: self._on_pad(conn, number, pad))
            conn.pipeline.set_state(Gst.State.PLAYING)
        conn = self.subscriber
        for entry in data["tracks"]:
            self.mids[entry["mid"]] = entry
        ask(conn.pc, "set-remote-description", description(GstWebRTC.WebRTCSDPType.OFFER, data["sdp"]))
        answer = ask(conn.pc, "create-answer", None, field="answer")
        ask(conn.pc, "set-local-description", description(GstWebRTC.WebRTCSDPType.ANSWER, answer))
        self.offers[-1]["answer_setup"] = re.search(r"^a=setup:(\w+)", answer, re.MULTILINE).group(1)
        if "ok" in self.request("subscribe_answer", type="answer", sdp=answer):
            conn.acknowledged()

    def _on_pad(self, conn: Connection, number: int, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        encoding = caps.get_structure(0).get_string("encoding-name") or ""
        chain = DEPAYLOAD.get(encoding.upper())
        if chain is None:
            self.errors.append(f"no decoder for {encoding}")
            return
        mid = pad.get_property("transceiver").get_property("mid")
        key = f"{number}:{mid}"
        bin_ = Gst.parse_bin_from_description(f"queue ! {chain} ! fakesink name=sink sync=false signal-handoffs=true",
                                              True)
        sink = bin_.get_by_name("sink")

        def handoff(*_: Any) -> None:
            self.frames[key] += 1

        sink.connect("handoff", handoff)
        conn.pipeline.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))

    def status(self) -> dict[str, Any]:
        number = self.subscribers_made
        current = {mid: n for key, n in self.frames.items() for c, mid in [key.split(":", 1)] if int(c) == number}
        return {"frames": {self.mids.get(mid, {}).get("track_id", mid): n for mid, n in current.items()},
                "offers": self.offers, "subscribers_made": number, "errors": self.errors,
                "states": {which: conn.pc.get_property("connection-state").value_nick
                           for which, conn in (("publish", self.publisher), ("subscribe", self.subscriber))
                           if conn is not None}}

    def drop_media(self) -> None:
        for conn in (self.publisher, self.subscriber):
            if conn is not None:
                conn.close()
        self.publisher = self.subscriber = None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ticket", type=int, required=True)
    args = parser.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()  # bus watches
    threading.Thread(target=loop.run, daemon=True).start()
    client = Client(args.base, args.token, args.ticket)
    client.connect()
    out({"re": "ready"})
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        try:
            if name == "join":
                reply: dict[str, Any] = client.request("join")
            elif name == "publish":
                reply = client.publish()
            elif name == "resubscribe":
                reply = client.request("resubscribe")
            elif name == "leave":
                reply = client.request("leave")
                client.drop_media()
            elif name == "status":
                reply = client.status()
            elif name == "quit":
                break
            else:
                reply = {"unknown": name}
        except Exception as exc:
            reply = {"exception": repr(exc)}
        out({"re": name, **reply})
    client.drop_media()
    client.sio.disconnect()
    loop.quit()
    out({"re": "quit"})


if __name__ == "__main__":
    main()
