// Every socket.io event of docs/protocol.md, typed. What the server sends is generated: each
// event's payload is a model of server/api/event_payloads.py (`ServerEvents` in the OpenAPI
// document, validated whenever the tests emit it), and tests/test_web_contract.py checks those
// events against docs/protocol.md's tables. The requests below, with their acknowledgements,
// are written here; the same test checks their names against the protocol.
import type { Message, Schemas } from "./types";

type Payloads = Schemas["ServerEvents"];
export type ServerToClientEvents = { [E in keyof Payloads]: (payload: Payloads[E]) => void };

export type Participant = Schemas["Participant"];
export type Track = Schemas["Track"];
/** An m-line of a subscribe offer carrying a track. */
export type OfferedTrack = Schemas["OfferedTrack"];
/** An m-line of a subscribe offer no longer in use (`active: false`). */
export type IdleOutlet = Schemas["IdleOutlet"];
export type SubscribeOffer = Schemas["SubscribeOffer"];
export type CaptureRequested = Schemas["CaptureRequested"];
export type Source = Track["source"];
export type Role = Participant["role"];
export type Channel = Participant["channel"];

export interface ErrorAck {
  error: { code: string; message: string };
}
export interface OkAck {
  ok: true;
}

export interface JoinAck {
  ticket_id: number;
  participant_id: string;
  role: Role;
  rejoined: boolean;
  participants: Participant[];
  tracks: Track[];
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
