// How many people waited, through the day, reconstructed from the day's tickets (the API
// has no history endpoint): a ticket waits from its take time until it is called, or until
// it was withdrawn.
import type { Ticket } from "@/api/types";

export interface Point {
  t: number;
  v: number;
}

const STEP_MS = 5 * 60_000;

export function waitingSeries(tickets: Ticket[], now: number): { points: Point[]; from: number; to: number } {
  const spans = tickets.map((t) => {
    const start = Date.parse(t.taken_at);
    const end = t.called_at ? Date.parse(t.called_at) : t.status === "waiting" ? Infinity : t.finished_at ? Date.parse(t.finished_at) : Infinity;
    return [start, end] as const;
  });
  const earliest = Math.min(now - 60 * 60_000, ...spans.map(([s]) => s));
  const from = Math.floor(earliest / STEP_MS) * STEP_MS;
  const points: Point[] = [];
  for (let t = from; t <= now; t += STEP_MS) {
    points.push({ t, v: spans.filter(([s, e]) => s <= t && t < e).length });
  }
  points.push({ t: now, v: spans.filter(([s, e]) => s <= now && now < e).length });
  return { points, from, to: now };
}
