// The RTCConfiguration of every connection to the relay (a call's two, the device check's):
// the server's ICE servers with short-lived TURN credentials, and the iceTransportPolicy the
// server chose for this user — "relay" sends media only through TURN (YUNBANG_ICE_RELAY_ROLES,
// docs/operations.md "TURN"). Without an answer, no ICE servers: a LAN still reaches the relay.
import { request } from "@/api/http";

export async function rtcConfiguration(): Promise<RTCConfiguration> {
  try {
    const reply = await request("get", "/api/ice-servers");
    return { iceServers: reply.ice_servers, iceTransportPolicy: reply.ice_transport_policy };
  } catch {
    return { iceServers: [] };
  }
}

/** The candidate types of a connection's selected pair (what the debug hook shows). */
export interface CandidatePath {
  local: string;
  remote: string;
  protocol: string;
  relayProtocol: string | null;
}

export async function selectedPath(pc: RTCPeerConnection | null): Promise<CandidatePath | null> {
  if (!pc) return null;
  const report = await pc.getStats();
  let pairId: string | undefined;
  report.forEach((s: Record<string, unknown>) => {
    if (s.type === "transport" && typeof s.selectedCandidatePairId === "string") pairId = s.selectedCandidatePairId;
  });
  const pair = pairId ? (report.get(pairId) as Record<string, unknown> | undefined) : undefined;
  if (!pair) return null;
  const local = report.get(String(pair.localCandidateId)) as Record<string, unknown> | undefined;
  const remote = report.get(String(pair.remoteCandidateId)) as Record<string, unknown> | undefined;
  return {
    local: String(local?.candidateType ?? ""),
    remote: String(remote?.candidateType ?? ""),
    protocol: String(local?.protocol ?? ""),
    relayProtocol: typeof local?.relayProtocol === "string" ? local.relayProtocol : null,
  };
}
