"""Socket events: the payload of each event the server sends (docs/protocol.md), one model each.

``ServerEvents`` names every server → client event with its payload; it goes into the OpenAPI
document's components, from which the browser client's event types are generated
(web-client/src/api/events.ts), tests/test_web_contract.py checks docs/protocol.md's event
tables against it, and the tests validate every payload the server emits (tests/conftest.py).
Payloads that are an HTTP answer's shape reuse its model (server/api/responses.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.api.responses import (
    Alert,
    Answer,
    CaseDocument,
    CaseRole,
    CaseSummary,
    CloudWindow,
    ExpertOpinion,
    InvitationSent,
    Message,
    NamedInvitation,
    PlacedTicket,
    Queue,
    Ticket,
    absent,
)
from server.models import TicketStatus

Source = Literal["camera", "microphone", "screen", "side_camera", "side_microphone"]
Channel = Literal["call", "consultation"]


# --- tickets and queues ----------------------------------------------------------------------


class CalledTicket(Ticket):
    window_name: str


class TransferredTicket(PlacedTicket):
    previous_number: str = Field(description="its number in the queue it left")


class UpdatedTicket(Ticket):
    """``ticket.updated``: after a transfer it carries what ``ticket.transfer`` does."""

    position: int = absent("after a transfer")
    estimated_wait_s: int = absent("after a transfer")
    previous_number: str = absent("after a transfer")


class TicketPosition(Answer):
    ticket_id: int
    number: str
    position: int
    estimated_wait_s: int


class TidalOpened(CloudWindow):
    clerk_id: int


class TidalClosed(CloudWindow):
    reason: Literal["manual", "expired"]


class LedgerUpdated(Answer):
    id: int
    state: Literal["open", "claimed", "answered", "visited", "closed"]
    centre_id: int
    department_id: int


class SessionRevoked(Answer):
    user_id: int
    session_ids: list[str]
    reason: Literal["logout", "password", "role", "disabled", "2fa_enabled", "2fa_reset"]


# --- the call ----------------------------------------------------------------------------------


class Participant(Answer):
    ticket_id: int
    participant_id: str
    user_id: int
    role: CaseRole
    display_name: str
    channel: Channel


class Track(Answer):
    """One published source as the relay describes it, with who publishes it when known."""

    track_id: str
    participant_id: str
    kind: Literal["video", "audio"]
    source: Source
    muted: bool
    channel: Channel
    layers: list[str] = absent("simulcast layers, lowest first: the relay picks one for you")
    user_id: int = absent()
    role: CaseRole = absent()
    display_name: str = absent()


class OfferedTrack(Track):
    """An m-line of a subscribe offer carrying a track."""

    mid: str
    active: Literal[True]


class IdleOutlet(Answer):
    """An m-line no longer in use (its track left; ``a=inactive``): a later offer may reuse it."""

    mid: str
    kind: Literal["video", "audio"]
    active: Literal[False]


class SubscribeOffer(Answer):
    ticket_id: int
    type: Literal["offer"]
    sdp: str
    tracks: list[OfferedTrack | IdleOutlet] = Field(description="one per m-line of the offer, in order")


class MutedTrack(Track):
    ticket_id: int


class PublishLayers(Answer):
    ticket_id: int
    source: Literal["camera", "side_camera"]
    active: list[str]


class VideoPaused(Answer):
    ticket_id: int
    track_id: str
    paused: bool
    reason: Literal["network"]


class PeerState(Answer):
    ticket_id: int
    pc: Literal["publish", "subscribe"]
    state: Literal["new", "connecting", "connected", "failed", "closed"]  # RTCPeerConnectionState


class CallReplaced(Answer):
    ticket_id: int


class CallClosed(Answer):
    ticket_id: int
    status: TicketStatus


class CaptureRequested(Answer):
    ticket_id: int
    request_id: str
    material: str
    material_id: int | None
    material_name: str


# --- consultations -----------------------------------------------------------------------------


class InvitationCreated(InvitationSent):
    case: CaseSummary
    now: datetime = Field(description="the server's clock, to count down expires_at")


class ConsultationStage(Answer):
    ticket_id: int
    main: bool
    invitations: list[NamedInvitation]


def _event(name: str) -> Any:
    return Field(alias=name)


class ServerEvents(BaseModel):
    """Every event the server sends, by name, with its payload."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ticket_created: PlacedTicket = _event("ticket.created")
    ticket_called: CalledTicket = _event("ticket.called")
    ticket_start: Ticket = _event("ticket.start")
    ticket_recall: Ticket = _event("ticket.recall")
    ticket_no_show: Ticket = _event("ticket.no-show")
    ticket_transfer: TransferredTicket = _event("ticket.transfer")
    ticket_complete: Ticket = _event("ticket.complete")
    ticket_cancel: Ticket = _event("ticket.cancel")
    ticket_updated: UpdatedTicket = _event("ticket.updated")
    ticket_rated: Ticket = _event("ticket.rated")
    ticket_position: TicketPosition = _event("ticket.position")
    queue_updated: Queue = _event("queue.updated")
    alert_raised: Alert = _event("alert.raised")
    tidal_opened: TidalOpened = _event("tidal.opened")
    tidal_closed: TidalClosed = _event("tidal.closed")
    ledger_updated: LedgerUpdated = _event("ledger.updated")
    session_revoked: SessionRevoked = _event("session.revoked")
    subscribe_offer: SubscribeOffer = _event("subscribe_offer")
    participant_joined: Participant = _event("participant_joined")
    participant_left: Participant = _event("participant_left")
    track_muted: MutedTrack = _event("track_muted")
    publish_layers: PublishLayers = _event("publish_layers")
    video_paused: VideoPaused = _event("video_paused")
    chat_message: Message = _event("chat_message")
    peer_state: PeerState = _event("peer_state")
    call_replaced: CallReplaced = _event("call_replaced")
    call_closed: CallClosed = _event("call_closed")
    capture_requested: CaptureRequested = _event("capture_requested")
    document_added: CaseDocument = _event("document.added")
    document_reviewed: CaseDocument = _event("document.reviewed")
    invitation_created: InvitationCreated = _event("invitation.created")
    invitation_updated: NamedInvitation = _event("invitation.updated")
    consultation_stage: ConsultationStage = _event("consultation.stage")
    opinion_added: ExpertOpinion = _event("opinion.added")


PAYLOADS: dict[str, Any] = {field.alias or name: field.annotation for name, field in ServerEvents.model_fields.items()}
# In the OpenAPI document's components: every event, and Track (also in the join acknowledgement).
SHARED: tuple[type[BaseModel], ...] = (Track, ServerEvents)
