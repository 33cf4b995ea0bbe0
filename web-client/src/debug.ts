// window.yb: a small debug hook for support staff and the browser tests (stats of received
// media, the live connection, a way to drop the socket as a bad network would, the sounds
// played so far, the candidate types of the call's connections).
import { live } from "@/api/socket";
import { sounds } from "@/lib/chime";
import type { CallSession } from "@/rtc/call";
import type { CandidatePath } from "@/rtc/iceConfig";

interface DebugHook {
  live: typeof live;
  call: CallSession | null;
  stats(): Promise<Record<string, unknown>>;
  paths(): Promise<{ send: CandidatePath | null; receive: CandidatePath | null }>;
  drop(): void;
  uploads: { material: string; percent: number; phase: string }[];
  sounds: Record<string, number>;
}

export const yb: DebugHook = {
  live,
  call: null,
  async stats() {
    return this.call ? await this.call.stats() : {};
  },
  async paths() {
    return this.call ? await this.call.paths() : { send: null, receive: null };
  },
  drop() {
    live.drop();
  },
  uploads: [],
  sounds,
};

export function installDebugHook(): void {
  (window as unknown as { yb: DebugHook }).yb = yb;
}
