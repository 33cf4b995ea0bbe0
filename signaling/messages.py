"""Shapes of the call messages clients send (validated before anything acts on them).

Ids are `Id` and every string must be storable (`server.inputs`), as over HTTP; an SDP past
``MAX_SDP`` bytes is refused with its own code, ``sdp_too_large``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from server.inputs import Id, Storable

MAX_SDP = 64 * 1024
Source = Literal["camera", "microphone", "screen", "side_camera", "side_microphone"]
CODED_ERRORS = frozenset({"sdp_too_large"})  # validation errors answered with their own code


def _sdp_size(sdp: str) -> str:
    if len(sdp.encode("utf-8", "surrogatepass")) > MAX_SDP:
        raise PydanticCustomError("sdp_too_large", "SDP 超过 {limit} 字节", {"limit": MAX_SDP})
    return sdp


Sdp = Annotated[str, Field(min_length=10), AfterValidator(_sdp_size)]


class Message(Storable):
    model_config = ConfigDict(extra="forbid")
    ticket_id: Id


class Join(Message):
    pass


class Publish(Message):
    type: Literal["offer"]
    sdp: Sdp
    sources: dict[Annotated[str, Field(max_length=32)], Source] = Field(min_length=1, max_length=8)


class SubscribeAnswer(Message):
    type: Literal["answer"]
    sdp: Sdp


class Candidate(Storable):
    model_config = ConfigDict(extra="ignore")
    candidate: str = Field(default="", max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=32)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=255)

    @model_validator(mode="after")
    def _placed(self) -> Candidate:
        if self.candidate and self.sdpMid is None and self.sdpMLineIndex is None:
            raise ValueError("a candidate names its m-line: sdpMid or sdpMLineIndex")
        return self


class IceCandidate(Message):
    pc: Literal["publish", "subscribe"]
    candidate: Candidate | None = None


class Mute(Message):
    source: Source
    muted: bool


class Chat(Message):
    # No upper bound here: the domain refuses a long text with its own code (message_too_long).
    text: str = Field(min_length=1)
    channel: Literal["call", "consultation"] = "call"


class CaptureRequest(Message):
    material: str = Field(min_length=1, max_length=20)


class NetCheck(Storable):
    """The device check's probe offer: one sendrecv video m-line (docs/protocol.md)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["offer"]
    sdp: Sdp


class NetCheckEnd(Storable):
    model_config = ConfigDict(extra="forbid")
