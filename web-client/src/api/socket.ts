// The one socket.io connection of a logged-in page: typed events, acknowledged requests,
// a visible state for the "重新连接中…" banner, and hooks that run after every reconnect
// so pages read the current state again (events are not replayed, docs/protocol.md).
import { io, type Socket } from "socket.io-client";
import { reactive } from "vue";
import type { ClientToServerEvents, ErrorAck, ServerToClientEvents } from "./events";
import { ApiError, enrolmentNeeded } from "./http";

export type LiveState = "idle" | "connecting" | "connected" | "reconnecting" | "refused";
type AnyHandler = (...args: never[]) => void;
type AckOf<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

const REQUEST_TIMEOUT_MS = 20000;
const REFUSALS = new Set(["auth_required", "invalid_token", "token_expired", "account_disabled", "session_revoked"]);

export class LiveConnection {
  readonly status = reactive({ state: "idle" as LiveState, everConnected: false, reconnects: 0, error: "" });
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  private readonly handlers = new Map<string, Set<AnyHandler>>();
  private readonly reconnectHooks = new Set<() => void>();
  private readonly connectHooks = new Set<() => void>();
  /** Every event received, newest last (a few hundred), for the debug hook and tests. */
  readonly log: [string, unknown][] = [];
  onRefused: (error: ApiError) => void = () => {};

  connect(token: string): void {
    this.disconnect();
    this.status.state = "connecting";
    this.status.error = "";
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({
      path: "/socket.io",
      auth: { token },
      // WebSocket first; where a proxy refuses it, long polling still works.
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      randomizationFactor: 0.3,
    });
    this.socket = socket;
    socket.on("connect", () => {
      const again = this.status.everConnected;
      this.status.state = "connected";
      this.status.everConnected = true;
      for (const hook of [...this.connectHooks]) hook();
      if (again) {
        this.status.reconnects += 1;
        for (const hook of [...this.reconnectHooks]) hook();
      }
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") {
        this.status.state = "idle";
        return;
      }
      this.status.state = "reconnecting";
      // The server closed the socket (e.g. after `refresh` on a disabled account): try again,
      // and let connect_error tell whether we are still welcome.
      if (reason === "io server disconnect") socket.connect();
    });
    socket.on("connect_error", (error: Error & { data?: { code?: string; message?: string } }) => {
      const code = error.data?.code;
      if (code === "2fa_enrolment_required") {
        this.disconnect();
        enrolmentNeeded();
        return;
      }
      if (code && REFUSALS.has(code)) {
        this.status.state = "refused";
        this.status.error = error.data?.message ?? code;
        this.onRefused(new ApiError(401, code, this.status.error));
        return;
      }
      this.status.state = this.status.everConnected ? "reconnecting" : "connecting";
    });
    socket.onAny((event: string, ...args: unknown[]) => {
      this.log.push([event, args[0]]);
      if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
      for (const handler of [...(this.handlers.get(event) ?? [])]) {
        (handler as (...a: unknown[]) => void)(...args);
      }
    });
  }

  disconnect(): void {
    if (this.socket) {
      this.socket.offAny();
      this.socket.disconnect();
      this.socket = null;
    }
    this.status.state = "idle";
    this.status.everConnected = false;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** Run after every connect, the first one included; returns the function that removes it. */
  onConnect(hook: () => void): () => void {
    this.connectHooks.add(hook);
    return () => this.connectHooks.delete(hook);
  }

  /** Resolves true once connected, false after `timeoutMs` without a connection. */
  whenConnected(timeoutMs = 5000): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const started = Date.now();
      const poll = () => {
        if (this.connected) resolve(true);
        else if (Date.now() - started > timeoutMs) resolve(false);
        else setTimeout(poll, 100);
      };
      poll();
    });
  }

  /** Listen to a server event; returns the function that stops listening. */
  on<E extends keyof ServerToClientEvents>(event: E, handler: ServerToClientEvents[E]): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as AnyHandler);
    return () => set.delete(handler as AnyHandler);
  }

  /** Run after every reconnect (not the first connect); returns the function that removes it. */
  onReconnect(hook: () => void): () => void {
    this.reconnectHooks.add(hook);
    return () => this.reconnectHooks.delete(hook);
  }

  /** An acknowledged request; an `{error}` ack becomes an ApiError with the server's message. */
  async request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<Exclude<AckOf<E>, ErrorAck>> {
    const socket = this.socket;
    if (!socket || !socket.connected) throw new ApiError(0, "not_connected", "与服务器的实时连接已断开，正在重新连接");
    let answer: AckOf<E>;
    try {
      // socket.io types emitWithAck's arguments per event name, which TypeScript cannot work out
      // for a name that is itself a type parameter (E); this method's own signature keeps the
      // payload and the answer checked for every caller, so the one call inside is typed by hand.
      const timed = socket.timeout(REQUEST_TIMEOUT_MS) as unknown as { emitWithAck(e: E, p: typeof payload): Promise<AckOf<E>> };
      answer = await timed.emitWithAck(event, payload);
    } catch {
      throw new ApiError(0, "timeout", "服务器没有及时响应，请稍后重试");
    }
    if (answer && typeof answer === "object" && "error" in answer) {
      const { code, message } = (answer as ErrorAck).error;
      throw new ApiError(0, code, message);
    }
    return answer as Exclude<AckOf<E>, ErrorAck>;
  }

  /** For tests and support: drop the transport as a network failure would (it reconnects). */
  drop(): void {
    this.socket?.io.engine?.close();
  }
}

export const live = new LiveConnection();
