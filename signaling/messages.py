"""Shapes of the call messages clients send (validated before anything acts on them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SDP = 64 * 1024
Source = Literal["camera", "microphone", "screen", "side_camera", "side_microphone"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: int


class Join(Message):
    pass


class Publish(Message):
    type: Literal["offer"]
    sdp: str = Field(min_length=10, max_length=MAX_SDP)
    sources: dict[str, Source] = Field(min_length=1, max_length=8)


class SubscribeAnswer(Message):
    type: Literal["answer"]
    sdp: str = Field(min_length=10, max_length=MAX_SDP)


class Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    candidate: str = Field(default="", max_length=1024)
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


class IceCandidate(Message):
    pc: Literal["publish", "subscribe"]
    candidate: Candidate | None = None


class Mute(Message):
    source: Source
    muted: bool


class Chat(Message):
    text: str = Field(min_length=1, max_length=2000)
    channel: Literal["call", "consultation"] = "call"


class CaptureRequest(Message):
    material: str = Field(min_length=1, max_length=20)
