// The expert's desk: invitations waiting for an answer (live, and read again over HTTP after
// a reload or reconnect), the consultations they accepted whose case is still open, and their
// own switches (accepting consultations at all, several at once).
import { reactive } from "vue";
import { ApiError, request } from "@/api/http";
import { inCall } from "@/api/status";
import type { CaseSummary, Invitation, InvitationToMe, Presence } from "@/api/types";
import type { LiveEvents } from "@/api/useLiveEvents";
import { invitationSound } from "@/lib/chime";
import { errorText } from "@/lib/errors";
import { calibrate, sanityCheck } from "@/lib/serverClock";
import { session } from "./session";

/** The invitation, as far as the expert knows it, with what went wrong answering it. */
export type DeskInvitation = InvitationToMe & { error?: string };
export type Consultation = Invitation & { case: CaseSummary; note?: string; invited_by_name?: string };

export const expertDesk = reactive({
  loaded: false,
  error: "",
  /** Invitations still to answer, and the ones that just ran out or were answered elsewhere. */
  invitations: [] as DeskInvitation[],
  /** Accepted consultations whose case is still open. */
  consultations: [] as Consultation[],
  /** The consultation on screen (its ticket id), joined to the case's call. */
  current: null as number | null,
  /** Cases whose call ended while the expert was in them: ticket id → number. */
  ended: [] as { ticket_id: number; number: string; status: string }[],
  available: true,
  parallel: false,
  presence: "offline" as Presence,
});

function upsert(invitation: DeskInvitation): void {
  const i = expertDesk.invitations.findIndex((x) => x.id === invitation.id);
  if (i < 0) expertDesk.invitations.unshift(invitation);
  else expertDesk.invitations.splice(i, 1, { ...expertDesk.invitations[i]!, ...invitation });
}

async function loadSettings(): Promise<void> {
  const me = session.user?.id;
  const pool = await request("get", "/api/experts");
  const mine = pool.find((e) => e.id === me);
  if (mine) {
    expertDesk.available = mine.available;
    expertDesk.parallel = mine.parallel_consultations;
    expertDesk.presence = mine.presence;
  }
}

/**
 * Read everything again (page load, reconnect): events are not replayed. `resume` (the page
 * was just opened or reloaded): go back into the one consultation the expert is in.
 */
export async function load(resume = false): Promise<void> {
  try {
    const [pending, accepted] = await Promise.all([
      request("get", "/api/invitations", { query: { status: "pending" } }),
      request("get", "/api/invitations", { query: { status: "accepted" } }),
      loadSettings(),
    ]);
    const still = new Set(pending.map((i) => i.id));
    // keep the ones already answered or expired on screen (their card says what happened)
    expertDesk.invitations = [
      ...pending,
      ...expertDesk.invitations.filter((i) => !still.has(i.id) && i.status !== "pending"),
    ];
    for (const i of pending) sanityCheck(i.created_at, i.expires_at);
    expertDesk.consultations = accepted.filter((i) => inCall(i.case.status));
    if (expertDesk.current !== null && !expertDesk.consultations.some((c) => c.ticket_id === expertDesk.current)) {
      expertDesk.current = null;
    }
    if (resume && expertDesk.current === null && expertDesk.consultations.length === 1) {
      expertDesk.current = expertDesk.consultations[0]!.ticket_id;
    }
    expertDesk.error = "";
  } catch (e) {
    expertDesk.error = errorText(e);
  } finally {
    expertDesk.loaded = true;
  }
}

export async function accept(invitation: DeskInvitation): Promise<void> {
  try {
    const answer = await request("post", "/api/invitations/{invitation_id}/accept", { path: { invitation_id: invitation.id } });
    calibrate(answer.answered_at);
    expertDesk.invitations = expertDesk.invitations.filter((i) => i.id !== invitation.id);
    const consultation: Consultation = { ...answer, note: invitation.note, invited_by_name: invitation.invited_by_name };
    expertDesk.consultations = [...expertDesk.consultations.filter((c) => c.ticket_id !== answer.ticket_id), consultation];
    expertDesk.current = answer.ticket_id;
  } catch (e) {
    answerFailed(invitation, e);
  }
}

export async function decline(invitation: DeskInvitation, reason: string): Promise<void> {
  try {
    const answer = await request("post", "/api/invitations/{invitation_id}/decline", {
      path: { invitation_id: invitation.id },
      body: { reason },
    });
    upsert({ ...invitation, ...answer, error: undefined });
  } catch (e) {
    answerFailed(invitation, e);
  }
}

/** The server's words on the card; an invitation that cannot be answered any more says why. */
function answerFailed(invitation: DeskInvitation, e: unknown): void {
  const message = errorText(e);
  const code = e instanceof ApiError ? e.code : "";
  const status = code === "invitation_expired" ? "expired" : invitation.status;
  upsert({ ...invitation, status, error: message });
}

export function dismiss(invitation: DeskInvitation): void {
  expertDesk.invitations = expertDesk.invitations.filter((i) => i.id !== invitation.id);
}

export async function setAvailable(available: boolean): Promise<void> {
  const answer = await request("patch", "/api/experts/me", { body: { available } });
  expertDesk.available = answer.available;
}

export async function setParallel(parallel: boolean): Promise<void> {
  const answer = await request("patch", "/api/experts/me", { body: { parallel_consultations: parallel } });
  expertDesk.parallel = answer.parallel_consultations;
}

export function open(ticketId: number | null): void {
  expertDesk.current = ticketId;
}

/** Follow the live events an expert gets, for as long as the view that owns `events` is there. */
export function follow(events: LiveEvents): void {
  events.on("invitation.created", (invitation) => {
    calibrate(invitation.created_at);
    upsert({ ...invitation, note: invitation.note ?? "", invited_by_name: invitation.invited_by_name ?? "" });
    invitationSound();
  });
  events.on("invitation.updated", (invitation) => {
    if (invitation.expert_id !== session.user?.id) return;
    const known = expertDesk.invitations.find((i) => i.id === invitation.id);
    if (known) upsert({ ...known, ...invitation });
    // accepted in another tab of the same expert: pick the consultation up from the server
    if (invitation.status === "accepted" && !expertDesk.consultations.some((c) => c.id === invitation.id)) void load();
  });
  events.on("call_closed", (closed) => {
    const gone = expertDesk.consultations.find((c) => c.ticket_id === closed.ticket_id);
    if (!gone) return;
    expertDesk.consultations = expertDesk.consultations.filter((c) => c.ticket_id !== closed.ticket_id);
    expertDesk.ended = [{ ticket_id: gone.ticket_id, number: gone.case.number, status: closed.status }, ...expertDesk.ended].slice(0, 5);
    if (expertDesk.current === closed.ticket_id) expertDesk.current = null;
  });
  events.onReconnect(() => void load());
}
