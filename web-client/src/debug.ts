// window.yb: a small debug hook for the browser tests, the benches and development (stats of
// received media, the live connection, a way to drop the socket as a bad network would, the
// sounds played so far, the candidate types of the call's connections). It is in `npm run dev`
// and in test builds (`npm run build:test`, what `make web` builds for the browser tests and
// benches), never in the production build (`npm run build`: the Dockerfile's, `make run`'s).
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

declare global {
  interface Window {
    yb?: DebugHook;
  }
}

/** Vite writes both in at build time: a production bundle keeps none of the hook's code. */
const WANTED = import.meta.env.DEV || import.meta.env.MODE === "test";

/** The hook, in the builds that carry it; null in production. */
export const yb: DebugHook | null = WANTED
  ? {
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
    }
  : null;

export function installDebugHook(): void {
  if (yb) window.yb = yb;
}
