import { onUnmounted } from "vue";
import type { ServerToClientEvents } from "./events";
import { live, type LiveConnection } from "./socket";

/** What a component listens to on the live connection (see useLiveEvents). */
export interface LiveEvents {
  /** A server event. */
  on<E extends keyof ServerToClientEvents>(event: E, handler: ServerToClientEvents[E]): void;
  /** After every reconnect (not the first connect): read again what was missed. */
  onReconnect(hook: () => void): void;
  /** After every connect, the first one included. */
  onConnect(hook: () => void): void;
}

/**
 * Live events for as long as the calling component is mounted: what is registered through the
 * answer (in setup, in onMounted or later) stops when the component unmounts, so no page goes on
 * listening after it has gone. Call it during setup.
 */
export function useLiveEvents(connection: LiveConnection = live): LiveEvents {
  let offs: (() => void)[] | null = [];
  const keep = (off: () => void) => {
    if (offs) offs.push(off);
    else off(); // registered after the unmount (an await that outlived the page): nothing to follow
  };
  onUnmounted(() => {
    for (const off of offs ?? []) off();
    offs = null;
  });
  return {
    on: (event, handler) => keep(connection.on(event, handler)),
    onReconnect: (hook) => keep(connection.onReconnect(hook)),
    onConnect: (hook) => keep(connection.onConnect(hook)),
  };
}
