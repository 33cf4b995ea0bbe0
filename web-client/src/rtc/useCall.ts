import { onMounted, onUnmounted, provide, type InjectionKey } from "vue";
import { live } from "@/api/socket";
import { yb } from "@/debug";
import { CallSession } from "./call";

/** The call of the view, for what it contains (VideoStage's link quality and paused videos). */
export const CALL: InjectionKey<CallSession> = Symbol("call");

/** The call of one ticket for the component that shows it: joined when the component mounts,
 * left when it goes; `window.yb.call` points at it meanwhile (the browser tests read it). */
export function useCall(ticketId: number): CallSession {
  const call = new CallSession(live, ticketId);
  if (yb) yb.call = call;
  provide(CALL, call);
  onMounted(() => void call.start());
  onUnmounted(() => {
    if (yb?.call === call) yb.call = null;
    void call.leave();
  });
  return call;
}
