// One case's consultation as the clerk and the experts in it see it: the invitations and
// their answers, who is in the main call, the opinions and the timeline. Read over HTTP
// (GET /api/tickets/{id}/consultations) and kept current from invitation.updated,
// consultation.stage, opinion.added and the experts' comings and goings in the call.
import { onMounted, onUnmounted, reactive } from "vue";
import { request } from "@/api/http";
import type { ConsultationRecord, NamedInvitation, Opinion, TimelineEntry } from "@/api/types";
import { useLiveEvents } from "@/api/useLiveEvents";
import { errorText } from "@/lib/errors";
import { calibrate, sanityCheck } from "@/lib/serverClock";

/** The experts a case may have at once (YUNBANG_MAX_EXPERTS_PER_CASE, docs/protocol.md). */
export const MAX_EXPERTS = 4;

export function useConsultation(ticketId: () => number, options: { canRead?: () => boolean } = {}) {
  const state = reactive({
    invitations: [] as NamedInvitation[],
    opinions: [] as Opinion[],
    timeline: [] as TimelineEntry[],
    notes: [] as { id: number; note: string; created_at: string }[],
    loaded: false,
    error: "",
  });

  function upsert(invitation: NamedInvitation): void {
    const i = state.invitations.findIndex((x) => x.id === invitation.id);
    if (i < 0) {
      state.invitations.push(invitation);
      return;
    }
    // Keep what only the live event carried (a decline's reason, the inviter's note).
    const before = state.invitations[i]!;
    state.invitations.splice(i, 1, { ...before, ...invitation, reason: invitation.reason ?? before.reason });
  }

  async function load(): Promise<void> {
    if (options.canRead && !options.canRead()) return;
    const id = ticketId();
    let record: ConsultationRecord;
    try {
      record = await request("get", "/api/tickets/{ticket_id}/consultations", { path: { ticket_id: id } });
    } catch (e) {
      state.error = errorText(e);
      return;
    }
    if (id !== ticketId()) return;
    for (const invitation of record.invitations) {
      if (invitation.status === "pending") sanityCheck(invitation.created_at, invitation.expires_at);
      upsert(invitation);
    }
    state.opinions = record.opinions;
    state.timeline = record.timeline;
    state.notes = record.consultations.map((c) => ({ id: c.id, note: c.note, created_at: c.created_at }));
    state.loaded = true;
    state.error = "";
  }

  // Bursts of events (an accept, then the join) become one read of the timeline.
  let timer: ReturnType<typeof setTimeout> | undefined;
  function refreshSoon(): void {
    clearTimeout(timer);
    timer = setTimeout(() => void load(), 300);
  }

  const mine = (p: { ticket_id: number }) => p.ticket_id === ticketId();
  const events = useLiveEvents();
  onMounted(() => {
    void load();
    events.on("invitation.updated", (invitation) => {
      if (!mine(invitation)) return;
      if (invitation.status !== "expired") calibrate(invitation.answered_at);
      upsert(invitation);
      refreshSoon();
    });
    events.on("consultation.stage", (stage) => {
      if (!mine(stage)) return;
      for (const invitation of stage.invitations) upsert(invitation);
      refreshSoon();
    });
    events.on("opinion.added", (opinion) => {
      if (!mine(opinion)) return;
      if (!state.opinions.some((o) => o.id === opinion.id)) state.opinions.push(opinion);
      refreshSoon();
    });
    events.on("participant_joined", (p) => {
      if (mine(p) && p.role === "expert") refreshSoon();
    });
    events.on("participant_left", (p) => {
      if (mine(p) && p.role === "expert") refreshSoon();
    });
    events.onReconnect(() => void load());
  });
  onUnmounted(() => clearTimeout(timer));

  /** 邀请专家 (the clerk): one consultation, one invitation per expert. */
  async function invite(expertIds: number[], note: string): Promise<void> {
    const created = await request("post", "/api/tickets/{ticket_id}/consultations", {
      path: { ticket_id: ticketId() },
      body: { expert_ids: expertIds, note },
    });
    calibrate(created.created_at);
    for (const invitation of created.invitations) upsert(invitation);
    refreshSoon();
  }

  /** 请专家进入通话 / 请专家回避 (the clerk): all accepted experts of the case. */
  async function setStage(main: boolean): Promise<void> {
    const path = { ticket_id: ticketId() };
    const moved = main
      ? await request("post", "/api/tickets/{ticket_id}/consultations/bring-in", { path, body: {} })
      : await request("post", "/api/tickets/{ticket_id}/consultations/send-back", { path, body: {} });
    for (const invitation of moved) upsert(invitation);
    refreshSoon();
  }

  /** 专家意见 (an expert of the case). */
  async function addOpinion(text: string): Promise<void> {
    const opinion = await request("post", "/api/tickets/{ticket_id}/opinions", { path: { ticket_id: ticketId() }, body: { text } });
    if (!state.opinions.some((o) => o.id === opinion.id)) state.opinions.push(opinion);
    refreshSoon();
  }

  /** Experts who take a place on the case now: pending (in time) or accepted. */
  function engaged(): NamedInvitation[] {
    return state.invitations.filter((i) => i.status === "accepted" || i.status === "pending");
  }

  return { state, load, invite, setStage, addOpinion, engaged };
}
