// The ticket status groups, as the server defines them once on its enum
// (TicketStatus.open_states() / in_call_states() in server/models.py);
// tests/test_web_contract.py checks these lists against it.
import type { components } from "./schema";

export type TicketStatus = components["schemas"]["TicketStatus"];

/** Not finished: waiting in the queue, or at a window. */
export const OPEN_STATES: readonly TicketStatus[] = ["waiting", "called", "in_service"];
/** At a window (called or being served): the ticket has a call. */
export const IN_CALL_STATES: readonly TicketStatus[] = ["called", "in_service"];

export const isOpen = (status: string): boolean => (OPEN_STATES as readonly string[]).includes(status);
export const inCall = (status: string): boolean => (IN_CALL_STATES as readonly string[]).includes(status);
