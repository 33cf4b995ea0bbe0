// The clerk's window: which window, the queues it serves (live), the ticket at the window.
import { reactive } from "vue";
import { TICKET_EVENTS } from "@/api/events";
import { request } from "@/api/http";
import { live } from "@/api/socket";
import { inCall } from "@/api/status";
import type { CompletionResult, DepartmentRef, Item, Queue, Ticket, UserWindow } from "@/api/types";
import type { LiveEvents } from "@/api/useLiveEvents";
import { session } from "./session";

const WINDOW_KEY = "yb.clerk.window";

export const clerk = reactive({
  window: null as UserWindow | null,
  queues: [] as Queue[],
  ticket: null as Ticket | null,
  item: null as Item | null,
  /** The ticket that just left the window, to show how it ended. */
  ended: null as Ticket | null,
  departments: [] as DepartmentRef[],
});

export function windows(): UserWindow[] {
  return (session.user?.windows ?? []).filter((w) => w.active);
}

export function restoreWindow(): void {
  const saved = Number(localStorage.getItem(WINDOW_KEY) || 0);
  const list = windows();
  clerk.window = list.find((w) => w.id === saved) ?? (list.length === 1 ? list[0]! : null);
}

export async function chooseWindow(window: UserWindow | null): Promise<void> {
  clerk.window = window;
  clerk.ticket = null;
  clerk.ended = null;
  if (window) localStorage.setItem(WINDOW_KEY, String(window.id));
  else localStorage.removeItem(WINDOW_KEY);
  if (window) await Promise.all([loadQueues(), loadTicket()]);
}

function serves(q: { centre_id: number; department_id: number }): boolean {
  const w = clerk.window;
  return !!w && q.centre_id === w.centre_id && w.departments.some((d) => d.id === q.department_id);
}

export async function loadQueues(): Promise<void> {
  if (!clerk.window) return;
  const all = await request("get", "/api/queues", { query: { centre_id: clerk.window.centre_id } });
  clerk.queues = all.filter(serves);
}

async function show(ticket: Ticket | null): Promise<void> {
  const itemChanged = ticket?.item_id !== clerk.ticket?.item_id;
  clerk.ticket = ticket;
  if (ticket && (itemChanged || !clerk.item)) {
    clerk.item = await request("get", "/api/items/{item_id}", { path: { item_id: ticket.item_id } });
  }
}

export async function loadTicket(): Promise<void> {
  const w = clerk.window;
  if (!w) return;
  const [called, serving] = await Promise.all([
    request("get", "/api/tickets", { query: { status: "called", limit: 50 } }),
    request("get", "/api/tickets", { query: { status: "in_service", limit: 50 } }),
  ]);
  const here = [...serving, ...called].filter((t) => t.window_id === w.id);
  await show(here[0] ?? null);
}

/** 叫号: the next ticket of this window's queues, or null when nobody waits. */
export async function callNext(): Promise<Ticket | null> {
  if (!clerk.window) return null;
  const ticket = await request("post", "/api/windows/{window_id}/call-next", { path: { window_id: clerk.window.id } });
  clerk.ended = null;
  if (ticket) await show(ticket);
  return ticket;
}

function settle(ticket: Ticket): void {
  if (inCall(ticket.status)) {
    void show(ticket);
  } else {
    clerk.ended = ticket;
    clerk.ticket = null;
  }
}

export async function act(action: "start" | "recall" | "no-show"): Promise<void> {
  if (!clerk.ticket) return;
  const path = { ticket_id: clerk.ticket.id };
  const ticket =
    action === "start"
      ? await request("post", "/api/tickets/{ticket_id}/start", { path })
      : action === "recall"
        ? await request("post", "/api/tickets/{ticket_id}/recall", { path })
        : await request("post", "/api/tickets/{ticket_id}/no-show", { path });
  settle(ticket);
}

export async function cancelTicket(reason: string): Promise<void> {
  if (!clerk.ticket) return;
  settle(await request("post", "/api/tickets/{ticket_id}/cancel", { path: { ticket_id: clerk.ticket.id }, body: { reason } }));
}

export async function transfer(departmentId: number, reason: string): Promise<void> {
  if (!clerk.ticket) return;
  settle(await request("post", "/api/tickets/{ticket_id}/transfer", {
    path: { ticket_id: clerk.ticket.id },
    body: { department_id: departmentId, reason },
  }));
}

export async function complete(result: CompletionResult, note: string): Promise<void> {
  if (!clerk.ticket) return;
  settle(await request("post", "/api/tickets/{ticket_id}/complete", { path: { ticket_id: clerk.ticket.id }, body: { result, note } }));
}

/** 办理情形 chosen or corrected in the call (null: none, the item's general checklist). */
export async function chooseSituation(situationId: number | null): Promise<void> {
  if (!clerk.ticket) return;
  settle(await request("put", "/api/tickets/{ticket_id}/situation", {
    path: { ticket_id: clerk.ticket.id },
    body: { situation_id: situationId },
  }));
}

/** 一事联办: complete this window's items of the case; it stays, goes on to the next department, or ends. */
export async function completeItems(items: { item_id: number; result: CompletionResult; note: string }[]): Promise<void> {
  if (!clerk.ticket) return;
  settle(await request("post", "/api/tickets/{ticket_id}/items/complete", { path: { ticket_id: clerk.ticket.id }, body: { items } }));
}

export async function loadDepartments(): Promise<void> {
  if (!clerk.departments.length) clerk.departments = (await request("get", "/api/org")).departments;
}

/** Re-read who I am (a tidal window opened or closed for me) and move the socket's rooms. */
async function rebind(): Promise<void> {
  session.user = await request("get", "/api/me");
  await live.request("refresh", {});
  if (clerk.window && !windows().some((w) => w.id === clerk.window?.id)) await chooseWindow(null);
  else if (!clerk.window) restoreWindow();
}

/** Follow the window's queues and ticket, for as long as the view that owns `events` is there. */
export function follow(events: LiveEvents): void {
  for (const name of TICKET_EVENTS) {
    events.on(name, (update: Ticket) => {
      if (clerk.ticket && update.id === clerk.ticket.id) settle({ ...clerk.ticket, ...update });
      else if (clerk.ended && update.id === clerk.ended.id) clerk.ended = { ...clerk.ended, ...update };
    });
  }
  events.on("queue.updated", (q) => {
    if (!serves(q)) return;
    const i = clerk.queues.findIndex((x) => x.centre_id === q.centre_id && x.department_id === q.department_id);
    if (i >= 0) clerk.queues.splice(i, 1, q);
    else clerk.queues.push(q);
  });
  events.on("tidal.opened", (w) => {
    if (w.clerk_id === session.user?.id) void rebind();
  });
  events.on("tidal.closed", () => void rebind().catch(() => undefined));
  events.onReconnect(() => {
    void loadQueues();
    void loadTicket();
  });
}
