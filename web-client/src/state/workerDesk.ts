// The worker's current resident: which ticket, where it stands, following the live events
// and reading the ticket again after a reconnect (events are not replayed).
import { reactive } from "vue";
import { TICKET_EVENTS } from "@/api/events";
import { request } from "@/api/http";
import { isOpen } from "@/api/status";
import type { Bundle, Item, Priority, Schemas, Ticket } from "@/api/types";
import type { LiveEvents } from "@/api/useLiveEvents";
import { session } from "./session";

const KEY = "yb.worker.ticket";

/** Our ticket, with its place in the queue while it waits (events after a start carry none). */
export type DeskTicket = Ticket & Partial<Record<"position" | "estimated_wait_s", number | null>>;

export const desk = reactive({
  ticket: null as DeskTicket | null,
  item: null as Item | null,
  /** 一事联办: the ticket's bundle (``item`` is then the item being served now). */
  bundle: null as Bundle | null,
  windowName: "",
  previousNumber: "",
});

function remember(ticket: DeskTicket | null): void {
  if (ticket) localStorage.setItem(KEY, String(ticket.id));
  else localStorage.removeItem(KEY);
}

async function setTicket(ticket: DeskTicket | null): Promise<void> {
  const itemChanged = ticket?.item_id !== desk.ticket?.item_id;
  desk.ticket = ticket;
  remember(ticket);
  if (ticket && (itemChanged || !desk.item)) {
    desk.item = await request("get", "/api/items/{item_id}", { path: { item_id: ticket.item_id } });
  }
  if (ticket?.bundle_id && desk.bundle?.id !== ticket.bundle_id) {
    desk.bundle = await request("get", "/api/bundles/{bundle_id}", { path: { bundle_id: ticket.bundle_id } });
  }
  if (!ticket?.bundle_id) desk.bundle = null;
  if (!ticket) desk.item = null;
}

/** Merge an event's ticket into ours: events after a start carry no position. */
function merge(update: DeskTicket): void {
  if (!desk.ticket || update.id !== desk.ticket.id) return;
  const waiting = update.status === "waiting";
  desk.ticket = {
    ...desk.ticket,
    ...update,
    position: waiting ? (update.position ?? desk.ticket.position) : null,
    estimated_wait_s: waiting ? (update.estimated_wait_s ?? desk.ticket.estimated_wait_s) : null,
  };
}

export async function reload(): Promise<void> {
  const saved = Number(localStorage.getItem(KEY) || 0);
  if (saved) {
    try {
      const ticket = await request("get", "/api/tickets/{ticket_id}", { path: { ticket_id: saved } });
      const open = isOpen(ticket.status) || (ticket.status === "completed" && !ticket.rating);
      if (open || desk.ticket?.id === ticket.id) {
        await setTicket(ticket);
        return;
      }
    } catch {
      // gone or not ours any more: look for a live one below
    }
  }
  const recent = await request("get", "/api/tickets", { query: { limit: 30 } });
  const mine = recent.filter((t) => t.worker_id === session.user?.id && isOpen(t.status));
  const pick = mine.find((t) => t.status !== "waiting") ?? mine[0] ?? null;
  if (pick) {
    await setTicket(await request("get", "/api/tickets/{ticket_id}", { path: { ticket_id: pick.id } }));
  } else if (desk.ticket && isOpen(desk.ticket.status)) {
    await setTicket(await request("get", "/api/tickets/{ticket_id}", { path: { ticket_id: desk.ticket.id } }));
  } else {
    await setTicket(null);
  }
}

/** 取号 for an item (``{ item_id }``, with its situation when found) or a bundle (``{ bundle_id }``). */
export async function take(what: { item_id: number } | { bundle_id: number }, resident: Schemas["TakeTicket"]["resident"],
                           priority: Priority | null, situationId: number | null = null): Promise<Ticket> {
  const ticket = await request("post", "/api/tickets", {
    body: { ...what, resident, ...(priority ? { priority } : {}), ...(situationId ? { situation_id: situationId } : {}) },
  });
  desk.previousNumber = "";
  await setTicket(ticket);
  return ticket;
}

export async function cancel(): Promise<void> {
  if (!desk.ticket) return;
  merge(await request("post", "/api/tickets/{ticket_id}/cancel", { path: { ticket_id: desk.ticket.id }, body: { reason: "" } }));
}

export async function rate(score: number, comment: string): Promise<void> {
  if (!desk.ticket) return;
  merge(await request("post", "/api/tickets/{ticket_id}/rating", { path: { ticket_id: desk.ticket.id }, body: { score, comment } }));
}

export function next(): void {
  void setTicket(null);
}

/** Follow the live events of our ticket, for as long as the view that owns `events` is there. */
export function follow(events: LiveEvents, onCalled: (again: boolean) => void): void {
  for (const name of TICKET_EVENTS) {
    events.on(name, (update: DeskTicket & { window_name?: string; previous_number?: string }) => {
      if (update.id !== desk.ticket?.id) return;
      const before = desk.ticket.status;
      if (name === "ticket.called" && update.window_name) desk.windowName = update.window_name;
      if (name === "ticket.transfer" && update.previous_number) desk.previousNumber = update.previous_number;
      merge(update);
      if (name === "ticket.called" || (before === "waiting" && update.status === "called")) onCalled(false);
      else if (name === "ticket.recall") onCalled(true);
    });
  }
  events.on("ticket.position", (p) => {
    if (desk.ticket && p.ticket_id === desk.ticket.id && desk.ticket.status === "waiting") {
      desk.ticket = { ...desk.ticket, position: p.position, estimated_wait_s: p.estimated_wait_s };
    }
  });
  // every connect, the first included: a page whose socket comes up after its ticket was called
  // (a slow village link) never heard ticket.called, and would wait on a ticket already called
  events.onConnect(() => {
    const before = desk.ticket?.status;
    void reload().then(() => {
      if (before === "waiting" && desk.ticket?.status === "called") onCalled(false);
    });
  });
}
