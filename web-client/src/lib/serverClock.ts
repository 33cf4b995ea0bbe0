// The server's clock as this page estimates it. Invitation countdowns must follow the
// server (it decides when an invitation expires), not the PC's own clock, which in a town
// office is often minutes or hours off. Every fresh server timestamp (an invitation that just
// arrived live, the answer to an invite or accept) tells us how far apart the two are.
import { ref } from "vue";

let offsetMs = 0;
let calibrated = false;
/** Ticks once a second while something shows a countdown; read it to re-render. */
export const tick = ref(Date.now());
let users = 0;
let timer: ReturnType<typeof setInterval> | undefined;

export function serverNow(): number {
  return Date.now() + offsetMs;
}

/** `iso` is a server time stamped a moment ago (an event just received, a reply just read). */
export function calibrate(iso: string | null | undefined): void {
  if (!iso) return;
  const stamp = Date.parse(iso);
  if (Number.isNaN(stamp)) return;
  offsetMs = stamp - Date.now();
  calibrated = true;
  tick.value = Date.now();
}

/**
 * Invitations read over HTTP after a reload carry no "now". If this page has never seen a
 * fresh stamp and its clock says an invitation the server still calls pending ran out long
 * ago, the PC's clock is wrong: count from the invitation's creation rather than show 0.
 */
export function sanityCheck(createdAt: string, expiresAt: string): void {
  if (calibrated) return;
  const created = Date.parse(createdAt);
  if (serverNow() > Date.parse(expiresAt) + 60_000 || serverNow() < created - 60_000) {
    offsetMs = created - Date.now();
  }
}

/** Seconds left until `expiresAt` on the server's clock (never below 0). */
export function secondsLeft(expiresAt: string): number {
  void tick.value;
  return Math.max(0, Math.round((Date.parse(expiresAt) - serverNow()) / 1000));
}

export function mmss(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

/** Keep `tick` moving while a countdown is on screen; returns the function that stops it. */
export function useTicker(): () => void {
  users += 1;
  if (!timer) timer = setInterval(() => (tick.value = Date.now()), 1000);
  return () => {
    users -= 1;
    if (users <= 0 && timer) {
      clearInterval(timer);
      timer = undefined;
      users = 0;
    }
  };
}
