// Every socket.io event of docs/protocol.md, typed. tests/test_web_contract.py checks that
// each name here is in docs/protocol.md and that every server → client event the protocol
// lists is here, so the page and this file cannot drift apart silently.
import type {
  Alert, CaseDocument, CaseSummary, Message, NamedInvitation, Opinion, PlacedTicket, Queue, Schemas, Ticket, Window,
} from "./types";

export type Source = "camera" | "microphone" | "screen" | "side_camera" | "side_microphone";
export type Role = "worker" | "clerk" | "expert";
export type Channel = "call" | "consultation";

export interface ErrorAck {
  error: { code: string; message: string };
}
export interface OkAck {
  ok: true;
}

export interface Participant {
  ticket_id: number;
  participant_id: string;
  user_id: number;
  role: Role;
  display_name: string;
  channel?: Channel;
}

export interface Track {
  track_id: string;
  participant_id: string;
  kind: "video" | "audio";
  source: Source;
  muted: boolean;
  channel?: Channel;
  user_id?: number;
  role?: Role;
  display_name?: string;
  /** The track comes in simulcast layers (lowest first); the relay picks one for you. */
  layers?: string[];
}

export interface OfferedTrack extends Track {
  mid: string;
  active: boolean;
}

export interface SubscribeOffer {
  ticket_id: number;
  type: "offer";
  sdp: string;
  tracks: OfferedTrack[];
}

export interface CaptureRequested {
  ticket_id: number;
  request_id: string;
  material: string;
  material_id: number | null;
  material_name: string;
}

export interface JoinAck {
  ticket_id: number;
  participant_id: string;
  role: Role;
  rejoined: boolean;
  participants: Participant[];
  tracks: Track[];
}

export interface TicketPosition {
  ticket_id: number;
  number: string;
  position: number;
  estimated_wait_s: number;
}

export interface ServerToClientEvents {
  "ticket.created": (ticket: PlacedTicket) => void;
  "ticket.called": (ticket: Ticket & { window_name: string }) => void;
  "ticket.start": (ticket: Ticket) => void;
  "ticket.recall": (ticket: Ticket) => void;
  "ticket.no-show": (ticket: Ticket) => void;
  "ticket.transfer": (ticket: PlacedTicket & { previous_number: string }) => void;
  "ticket.complete": (ticket: Ticket) => void;
  "ticket.cancel": (ticket: Ticket) => void;
  "ticket.updated": (ticket: Ticket) => void;
  "ticket.rated": (ticket: Ticket) => void;
  "ticket.position": (position: TicketPosition) => void;
  "queue.updated": (queue: Queue) => void;
  "alert.raised": (alert: Alert) => void;
  "tidal.opened": (window: Window & { clerk_id: number }) => void;
  "tidal.closed": (window: Window & { reason: "manual" | "expired" }) => void;
  "session.revoked": (revoked: { user_id: number; session_ids: string[]; reason: "logout" | "password" | "role" | "disabled" | "2fa_reset" }) => void;
  subscribe_offer: (offer: SubscribeOffer) => void;
  participant_joined: (participant: Participant) => void;
  participant_left: (participant: Participant) => void;
  track_muted: (track: Track & { ticket_id: number }) => void;
  publish_layers: (layers: { ticket_id: number; source: Source; active: string[] }) => void;
  video_paused: (state: { ticket_id: number; track_id: string; paused: boolean; reason: "network" }) => void;
  chat_message: (message: Message) => void;
  peer_state: (state: { ticket_id: number; pc: "publish" | "subscribe"; state: "connecting" | "connected" | "failed" | "closed" }) => void;
  call_replaced: (call: { ticket_id: number }) => void;
  call_closed: (call: { ticket_id: number; status: string }) => void;
  capture_requested: (request: CaptureRequested) => void;
  "document.added": (document: CaseDocument) => void;
  "document.reviewed": (document: CaseDocument) => void;
  "invitation.created": (invitation: Schemas["InvitationSent"] & { case: CaseSummary; now: string }) => void;
  "invitation.updated": (invitation: NamedInvitation) => void;
  "consultation.stage": (stage: { ticket_id: number; main: boolean; invitations: NamedInvitation[] }) => void;
  "opinion.added": (opinion: Opinion) => void;
}

type Ack<T> = (answer: T | ErrorAck) => void;

export interface ClientToServerEvents {
  refresh: (payload: Record<string, never>, ack: Ack<{ ok: true; rooms: string[] }>) => void;
  ping_app: (payload: Record<string, never>, ack: Ack<{ ok: true; user_id: number }>) => void;
  join: (payload: { ticket_id: number }, ack: Ack<JoinAck>) => void;
  publish: (
    payload: { ticket_id: number; type: "offer"; sdp: string; sources: Record<string, Source> },
    ack: Ack<{ ticket_id: number; type: "answer"; sdp: string }>,
  ) => void;
  subscribe_answer: (payload: { ticket_id: number; type: "answer"; sdp: string }, ack: Ack<OkAck>) => void;
  resubscribe: (payload: { ticket_id: number }, ack: Ack<OkAck>) => void;
  ice_candidate: (
    payload: { ticket_id: number; pc: "publish" | "subscribe"; candidate: RTCIceCandidateInit | null },
    ack: Ack<OkAck>,
  ) => void;
  mute: (payload: { ticket_id: number; source: Source; muted: boolean }, ack: Ack<OkAck & { track: Track }>) => void;
  chat: (
    payload: { ticket_id: number; text: string; channel?: Channel },
    ack: Ack<OkAck & { message: Message }>,
  ) => void;
  capture_request: (
    payload: { ticket_id: number; material: string },
    ack: Ack<OkAck & Omit<CaptureRequested, "ticket_id">>,
  ) => void;
  leave: (payload: { ticket_id: number }, ack: Ack<OkAck>) => void;
  net_check: (payload: { type: "offer"; sdp: string }, ack: Ack<{ type: "answer"; sdp: string; max_s: number }>) => void;
  net_check_end: (
    payload: Record<string, never>,
    ack: Ack<OkAck & { received_packets?: number; echoed_packets?: number; uplink_bps?: number | null; seconds?: number }>,
  ) => void;
}

/** Ticket events a worker's or clerk's page reacts to (all carry the Ticket). */
export const TICKET_EVENTS = [
  "ticket.created",
  "ticket.called",
  "ticket.start",
  "ticket.recall",
  "ticket.no-show",
  "ticket.transfer",
  "ticket.complete",
  "ticket.cancel",
  "ticket.updated",
  "ticket.rated",
] as const satisfies readonly (keyof ServerToClientEvents)[];
